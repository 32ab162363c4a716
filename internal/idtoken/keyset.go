package idtoken

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	jwksTimeout = 10 * time.Second
	jwksMaxBody = 1 << 20
	// minRSABits refuses keys too short to be trusted, whatever the JWKS says.
	minRSABits = 2048
)

// keySet is the cached key set of one JWKS URL.
//
// Fetches happen in three cases, all single-flight: when there are no keys
// yet (after a failure, at most once per refetch interval); when a token
// names a key we do not have (at most once per refetch interval, so forged
// key ids cannot make us hammer the provider); and when the cached set is
// older than its maximum age, so that a key the provider withdrew stops
// being trusted.
type keySet struct {
	v   *Verifier
	url string

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	gen       uint64    // incremented on every successful fetch
	fetchedAt time.Time // of the current keys
	forcedAt  time.Time // last fetch for an unknown key or an old set
	failedAt  time.Time // last failed fetch
	lastErr   error     // of the last fetch; nil after success
	inflight  *fetchCall
}

type fetchCall struct {
	done chan struct{}
	err  error
}

// snapshot is the key set as one caller saw it.
type snapshot struct {
	keys []jose.JSONWebKey
	gen  uint64
}

// current returns the cached keys, fetching them first if there are none or
// if they are older than the maximum age.
func (s *keySet) current(ctx context.Context) (snapshot, error) {
	s.mu.Lock()
	now := s.v.now()
	switch {
	case s.keys == nil && s.inflight != nil:
		return s.wait(ctx, s.inflight)
	case s.keys == nil:
		if s.lastErr != nil && now.Sub(s.failedAt) < s.v.refetch {
			err := s.lastErr
			s.mu.Unlock()
			return snapshot{}, err
		}
		return s.wait(ctx, s.startLocked(ctx))
	case now.Sub(s.fetchedAt) >= s.v.keysMaxAge && s.mayForceLocked(now):
		s.forcedAt = now
		// A failed refresh keeps the old keys: wait returns them with the
		// error, and an outage at the provider must not stop verification.
		snap, err := s.wait(ctx, s.startLocked(ctx))
		if err != nil && snap.keys != nil {
			s.v.log.Warn("refreshing an old JWKS failed; keeping the cached keys", "jwks_url", s.url, "err", err)
			return snap, nil
		}
		return snap, err
	case s.inflight != nil && now.Sub(s.fetchedAt) >= s.v.keysMaxAge:
		// Someone is already refreshing an old set; use its result.
		snap, _ := s.wait(ctx, s.inflight)
		if snap.keys != nil {
			return snap, nil
		}
		return snap, fail(CheckJWKS, ErrJWKSUnavailable)
	default:
		snap := snapshot{keys: s.keys, gen: s.gen}
		s.mu.Unlock()
		return snap, nil
	}
}

// refresh is called after a token's key was not in seen. It returns a newer
// set if one exists or can be fetched now; otherwise the same set again.
func (s *keySet) refresh(ctx context.Context, seen snapshot) (snapshot, error) {
	s.mu.Lock()
	now := s.v.now()
	switch {
	case s.gen != seen.gen:
		snap := snapshot{keys: s.keys, gen: s.gen}
		s.mu.Unlock()
		return snap, nil
	case s.inflight != nil:
		return s.wait(ctx, s.inflight)
	case !s.mayForceLocked(now):
		s.mu.Unlock()
		return seen, nil
	default:
		s.forcedAt = now
		return s.wait(ctx, s.startLocked(ctx))
	}
}

func (s *keySet) mayForceLocked(now time.Time) bool {
	return s.inflight == nil && (s.forcedAt.IsZero() || now.Sub(s.forcedAt) >= s.v.refetch)
}

// startLocked begins a fetch. It runs detached from ctx so that one caller
// giving up does not fail the fetch for the others sharing it.
func (s *keySet) startLocked(ctx context.Context) *fetchCall {
	call := &fetchCall{done: make(chan struct{})}
	s.inflight = call
	go func() {
		keys, err := s.v.fetchJWKS(context.WithoutCancel(ctx), s.url)
		s.mu.Lock()
		s.inflight = nil
		if err == nil {
			s.keys, s.fetchedAt, s.lastErr = keys, s.v.now(), nil
			s.gen++
		} else {
			s.failedAt, s.lastErr = s.v.now(), err
		}
		call.err = err
		s.mu.Unlock()
		close(call.done)
	}()
	return call
}

// wait is entered with s.mu held and releases it.
func (s *keySet) wait(ctx context.Context, call *fetchCall) (snapshot, error) {
	s.mu.Unlock()
	if s.v.onJoin != nil {
		s.v.onJoin()
	}
	select {
	case <-call.done:
	case <-ctx.Done():
		return snapshot{}, failf(CheckJWKS, ErrJWKSUnavailable, "%v", ctx.Err())
	}
	s.mu.Lock()
	snap := snapshot{keys: s.keys, gen: s.gen}
	s.mu.Unlock()
	return snap, call.err
}

// fetchJWKS downloads and parses a key set. Errors are *Error values with
// Check "jwks".
func (v *Verifier) fetchJWKS(ctx context.Context, jwksURL string) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, jwksURL, nil)
	if err != nil {
		return nil, failf(CheckJWKS, ErrJWKSUnavailable, "cannot build request")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, failf(CheckJWKS, ErrJWKSUnavailable, "GET %s: %v", jwksURL, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return nil, failf(CheckJWKS, ErrJWKSUnavailable, "GET %s: HTTP status %d", jwksURL, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBody+1))
	if err != nil {
		return nil, failf(CheckJWKS, ErrJWKSUnavailable, "GET %s: reading body: %v", jwksURL, err)
	}
	if len(body) > jwksMaxBody {
		return nil, failf(CheckJWKS, ErrJWKSUnavailable, "GET %s: larger than %d bytes", jwksURL, jwksMaxBody)
	}
	keys, skipped, err := parseJWKS(body)
	if err != nil {
		return nil, failf(CheckJWKS, ErrJWKSUnavailable, "GET %s: %v", jwksURL, err)
	}
	if skipped > 0 {
		v.log.Debug("ignored unusable keys in JWKS", "jwks_url", jwksURL, "skipped", skipped, "kept", len(keys))
	}
	return keys, nil
}

// parseJWKS keeps the public signing keys it can use. One unusable key (an
// unknown type, an encryption key, a short RSA key) is skipped rather than
// failing the whole set, so a provider adding a new kind of key does not
// break verification with the kinds it already uses.
func parseJWKS(body []byte) (keys []jose.JSONWebKey, skipped int, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, 0, fmt.Errorf("not a JSON key set")
	}
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			skipped++
			continue
		}
		pub := k.Public()
		if !usable(pub) {
			skipped++
			continue
		}
		keys = append(keys, pub)
	}
	if len(keys) == 0 {
		return nil, skipped, fmt.Errorf("no usable signing keys (%d skipped)", skipped)
	}
	return keys, skipped, nil
}

func usable(k jose.JSONWebKey) bool {
	if !k.Valid() || !k.IsPublic() {
		return false
	}
	if k.Use != "" && k.Use != "sig" {
		return false
	}
	if k.Algorithm != "" && !supported(k.Algorithm) {
		return false
	}
	if pub, ok := k.Key.(*rsa.PublicKey); ok && pub.N.BitLen() < minRSABits {
		return false
	}
	return true
}

// fits reports whether k may verify a signature made with alg. go-jose
// would refuse most mismatches too; checking first keeps an RSA key from
// ever being offered to an EC algorithm and honours the key's own alg.
func fits(k jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pub.Curve == elliptic.P256()
		case "ES384":
			return pub.Curve == elliptic.P384()
		case "ES512":
			return pub.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// verifyWith tries the keys that may have signed jws. matched reports
// whether any key was a candidate, which tells a bad signature from an
// unknown key.
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, alg, kid string) (payload []byte, matched bool) {
	for _, k := range keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		if !fits(k, alg) {
			continue
		}
		matched = true
		if p, err := jws.Verify(k.Key); err == nil {
			return p, true
		}
	}
	return nil, matched
}
