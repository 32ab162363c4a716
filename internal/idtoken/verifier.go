package idtoken

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Defaults for zero Options fields.
const (
	DefaultSkew               = 2 * time.Minute
	DefaultMaxAge             = 24 * time.Hour
	DefaultKeyRefetchInterval = time.Minute
	DefaultKeySetMaxAge       = time.Hour
)

// maxTokenSize bounds the work an oversized token can cause; real id_tokens
// are a few kilobytes.
const maxTokenSize = 64 << 10

// supported reports the only algorithms ever accepted, whatever Expect
// says: asymmetric signatures. "none" and the HMAC family are absent on
// purpose: with HS256 a token "signed" with the provider's public key as the
// HMAC secret would verify.
func supported(alg string) bool {
	switch alg {
	case "RS256", "RS384", "RS512",
		"ES256", "ES384", "ES512",
		"PS256", "PS384", "PS512",
		"EdDSA":
		return true
	}
	return false
}

// DefaultAlgorithms returns the algorithms accepted when
// Expect.Algorithms is empty: every supported one.
func DefaultAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}
}

// defaultAlgs is DefaultAlgorithms converted once; it is never modified.
var defaultAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512,
	jose.PS256, jose.PS384, jose.PS512, jose.EdDSA,
}

// Options configures a Verifier. Zero fields take the defaults above.
type Options struct {
	// HTTPClient fetches key sets. The Verifier uses a copy that never
	// follows redirects.
	HTTPClient *http.Client
	// Now is the clock for every time check and for metrics.
	Now func() time.Time
	// Skew is the clock difference tolerated on exp, nbf and iat.
	Skew time.Duration
	// MaxAge refuses tokens whose iat is older than this.
	MaxAge time.Duration
	// KeyRefetchInterval is the least time between two key set fetches
	// caused by tokens naming unknown keys (or by an old set).
	KeyRefetchInterval time.Duration
	// KeySetMaxAge is how long a fetched key set is used before it is
	// fetched again on the next verification, so keys the provider has
	// withdrawn stop being trusted. A failed refetch keeps the old set.
	KeySetMaxAge time.Duration
	// Metrics may be nil.
	Metrics *Metrics
	Logger  *slog.Logger
}

// Verifier verifies id_tokens. It caches one key set per JWKS URL and is
// safe for concurrent use.
type Verifier struct {
	client     *http.Client
	now        func() time.Time
	skew       time.Duration
	maxAge     time.Duration
	refetch    time.Duration
	keysMaxAge time.Duration
	metrics    *Metrics
	log        *slog.Logger

	// onJoin is a test hook called when a caller waits for a key set fetch.
	onJoin func()

	mu   sync.Mutex
	sets map[string]*keySet
}

// NewVerifier returns a Verifier with an empty key cache.
func NewVerifier(opts Options) *Verifier {
	v := &Verifier{
		now:        opts.Now,
		skew:       opts.Skew,
		maxAge:     opts.MaxAge,
		refetch:    opts.KeyRefetchInterval,
		keysMaxAge: opts.KeySetMaxAge,
		metrics:    opts.Metrics,
		log:        opts.Logger,
		sets:       make(map[string]*keySet),
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.skew <= 0 {
		v.skew = DefaultSkew
	}
	if v.maxAge <= 0 {
		v.maxAge = DefaultMaxAge
	}
	if v.refetch <= 0 {
		v.refetch = DefaultKeyRefetchInterval
	}
	if v.keysMaxAge <= 0 {
		v.keysMaxAge = DefaultKeySetMaxAge
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	var c http.Client
	if opts.HTTPClient != nil {
		c = *opts.HTTPClient
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	v.client = &c
	return v
}

// Expect is what a token must match.
type Expect struct {
	// Issuer must equal the iss claim exactly.
	Issuer string
	// ClientID must be in aud, and equal azp when azp is present.
	ClientID string
	// TrustedAudiences are the other audiences a token may list besides
	// ClientID (the profile's trusted_audiences); any other is refused.
	TrustedAudiences []string
	// JWKSURL is the provider's jwks_uri.
	JWKSURL string
	// Nonce, when not empty, must equal the nonce claim. When empty, the
	// token may carry any nonce or none.
	Nonce string
	// Algorithms allowed in the header; empty means DefaultAlgorithms().
	// Symmetric algorithms and "none" are never accepted even if listed.
	Algorithms []string
}

// Verify checks raw and returns its claims. Every failure is an [*Error]
// naming the failed check.
//
// In order: compact serialization; alg in the allow-list (asymmetric only);
// signature against the key set at want.JWKSURL; iss equals want.Issuer
// exactly; aud contains want.ClientID and nothing but it and
// want.TrustedAudiences; azp present when aud has several
// values and equal to the client id whenever present; exp not passed and
// nbf (if any) reached, both with Skew; iat present, not beyond now+Skew
// and not older than MaxAge; nonce; sub non-empty. Verify does not check
// at_hash, acr, amr or auth_time; callers that need them read the claims.
func (v *Verifier) Verify(ctx context.Context, raw string, want Expect) (Claims, error) {
	start := v.now()
	c, err := v.verify(ctx, raw, want)
	v.metrics.observe(v.now().Sub(start), err)
	return c, err
}

func (v *Verifier) verify(ctx context.Context, raw string, want Expect) (Claims, error) {
	algs, err := want.check()
	if err != nil {
		return Claims{}, err
	}
	if len(raw) > maxTokenSize {
		return Claims{}, failf(CheckMalformed, ErrMalformed, "longer than %d bytes", maxTokenSize)
	}
	jws, err := jose.ParseSignedCompact(raw, algs)
	if err != nil {
		var unexpected *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &unexpected) {
			return Claims{}, failf(CheckAlgorithm, ErrAlgorithmNotAllowed, "%q", truncate(string(unexpected.Got), 16))
		}
		return Claims{}, fail(CheckMalformed, ErrMalformed)
	}
	if len(jws.Signatures) != 1 {
		return Claims{}, failf(CheckMalformed, ErrMalformed, "expected one signature")
	}
	header := jws.Signatures[0].Header
	alg, kid := header.Algorithm, header.KeyID

	payload, err := v.verifySignature(ctx, want.JWKSURL, jws, alg, kid)
	if err != nil {
		return Claims{}, err
	}
	var rc rawClaims
	if err := json.Unmarshal(payload, &rc); err != nil {
		return Claims{}, failf(CheckMalformed, ErrMalformed, "claims are not a valid JSON object")
	}
	if err := v.checkClaims(&rc, want, v.now()); err != nil {
		return Claims{}, err
	}
	return rc.claims(), nil
}

func (v *Verifier) verifySignature(ctx context.Context, jwksURL string, jws *jose.JSONWebSignature, alg, kid string) ([]byte, error) {
	set := v.keySet(jwksURL)
	snap, err := set.current(ctx)
	if err != nil {
		return nil, err
	}
	payload, matched := verifyWith(jws, snap.keys, alg, kid)
	if payload != nil {
		return payload, nil
	}
	if matched && kid != "" {
		// The named key exists and rejected the signature: a forgery or a
		// corrupted token, not a rotation.
		return nil, fail(CheckSignature, ErrBadSignature)
	}
	// An unknown kid (or, without kid, no key that verifies) may mean the
	// provider rotated its keys.
	newer, err := set.refresh(ctx, snap)
	if err != nil {
		return nil, err
	}
	if newer.gen == snap.gen {
		if matched {
			return nil, fail(CheckSignature, ErrBadSignature)
		}
		return nil, fail(CheckSignature, ErrUnknownKey)
	}
	payload, matched = verifyWith(jws, newer.keys, alg, kid)
	switch {
	case payload != nil:
		return payload, nil
	case matched:
		return nil, fail(CheckSignature, ErrBadSignature)
	default:
		return nil, fail(CheckSignature, ErrUnknownKey)
	}
}

func (v *Verifier) keySet(jwksURL string) *keySet {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.sets[jwksURL]
	if s == nil {
		s = &keySet{v: v, url: jwksURL}
		v.sets[jwksURL] = s
	}
	return s
}

// check validates the expectations and returns the algorithms to accept.
func (want Expect) check() ([]jose.SignatureAlgorithm, error) {
	if want.Issuer == "" {
		return nil, failf(CheckIssuer, ErrInvalidExpect, "no issuer")
	}
	if want.ClientID == "" {
		return nil, failf(CheckAudience, ErrInvalidExpect, "no client id")
	}
	u, err := url.Parse(want.JWKSURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, failf(CheckJWKS, ErrInvalidExpect, "JWKS URL must be an absolute http(s) URL")
	}
	if len(want.Algorithms) == 0 {
		return defaultAlgs, nil
	}
	algs := make([]jose.SignatureAlgorithm, 0, len(want.Algorithms))
	for _, n := range want.Algorithms {
		if supported(n) {
			algs = append(algs, jose.SignatureAlgorithm(n))
		}
	}
	if len(algs) == 0 {
		return nil, failf(CheckAlgorithm, ErrInvalidExpect, "no supported asymmetric algorithm allowed")
	}
	return algs, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
