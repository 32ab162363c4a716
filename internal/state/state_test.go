package state_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/state"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable test clock; tests using it do not run in parallel.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func key(id, fill byte) state.Key {
	return state.Key{ID: id, Secret: bytes.Repeat([]byte{fill}, state.KeySize)}
}

func newSigner(t testing.TB, c *clock, primary state.Key, older ...state.Key) *state.Signer {
	t.Helper()
	s, err := state.NewSigner(primary, older, state.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var payload = state.Payload{
	ConnectionID: "5f1c7a8e-2b4d-4c3a-9e0f-1a2b3c4d5e6f",
	WorkspaceID:  "ws-acme",
	ProviderID:   "google",
	Nonce:        "n-0S6_WzA2Mj",
}

func sign(t testing.TB, s *state.Signer, p state.Payload) string {
	t.Helper()
	tok, err := s.Sign(p)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// mustReject checks that Verify fails with want and leaks nothing.
func mustReject(t *testing.T, s *state.Signer, token string, want ...error) {
	t.Helper()
	p, err := s.Verify(token)
	if err == nil {
		t.Fatalf("Verify accepted a bad token: %+v", p)
	}
	if p != (state.Payload{}) {
		t.Fatalf("Verify returned a payload with error %v", err)
	}
	ok := false
	for _, w := range want {
		ok = ok || errors.Is(err, w)
	}
	if !ok {
		t.Fatalf("Verify error = %v, want one of %v", err, want)
	}
	if len(token) >= 8 && strings.Contains(err.Error(), token) {
		t.Fatalf("error %q contains the token", err)
	}
}

func TestRoundTrip(t *testing.T) {
	c := &clock{t0.Add(500 * time.Millisecond)}
	s := newSigner(t, c, key(1, 0xA1))
	cases := []struct {
		name    string
		in      state.Payload
		wantIAT time.Time
		wantEXP time.Time
	}{
		{"times filled from clock", payload, t0, t0.Add(state.DefaultLifetime)},
		{"explicit times kept", func() state.Payload {
			p := payload
			p.IssuedAt, p.ExpiresAt = t0.Add(-time.Minute), t0.Add(time.Hour)
			return p
		}(), t0.Add(-time.Minute), t0.Add(time.Hour)},
		{"only expiry given", func() state.Payload {
			p := payload
			p.ExpiresAt = t0.Add(2 * time.Minute)
			return p
		}(), t0, t0.Add(2 * time.Minute)},
		{"empty strings", state.Payload{}, t0, t0.Add(state.DefaultLifetime)},
		{"max field length", state.Payload{ConnectionID: strings.Repeat("c", 255), Nonce: "\x00\xff"}, t0, t0.Add(state.DefaultLifetime)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := sign(t, s, tc.in)
			if len(tok) > state.MaxTokenLen || strings.ContainsAny(tok, "+/=") {
				t.Fatalf("token %q is not unpadded base64url within bounds", tok)
			}
			got, err := s.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := tc.in
			want.IssuedAt, want.ExpiresAt = tc.wantIAT, tc.wantEXP
			if got != want {
				t.Fatalf("Verify = %+v, want %+v", got, want)
			}
		})
	}
}

func TestLifetimeOption(t *testing.T) {
	c := &clock{t0}
	s, err := state.NewSigner(key(1, 1), nil, state.Options{Now: c.Now, Lifetime: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Verify(sign(t, s, payload))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.ExpiresAt.Sub(p.IssuedAt); got != 30*time.Second {
		t.Fatalf("lifetime = %v, want 30s", got)
	}
}

func decodeTok(t *testing.T, tok string) []byte {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func encodeTok(raw []byte) string { return base64.RawURLEncoding.EncodeToString(raw) }

func TestTamperedByte(t *testing.T) {
	c := &clock{t0}
	s := newSigner(t, c, key(1, 0xA1), key(2, 0xA2))
	tok := sign(t, s, payload)
	raw := decodeTok(t, tok)
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x01
		if i == 0 { // an unknown version is not a token at all
			mustReject(t, s, encodeTok(bad), state.ErrMalformed)
			continue
		}
		mustReject(t, s, encodeTok(bad), state.ErrBadSignature)
	}
	// Switching the key id to another key the signer holds must fail too.
	bad := bytes.Clone(raw)
	bad[1] = 2
	mustReject(t, s, encodeTok(bad), state.ErrBadSignature)
	if _, err := s.Verify(tok); err != nil {
		t.Fatalf("original token no longer verifies: %v", err)
	}
}

func TestPayloadSwap(t *testing.T) {
	c := &clock{t0}
	s := newSigner(t, c, key(1, 0xA1))
	raw := decodeTok(t, sign(t, s, payload))
	other := payload
	other.ConnectionID = "6f1c7a8e-2b4d-4c3a-9e0f-1a2b3c4d5e6f" // same length, one char differs
	otherRaw := decodeTok(t, sign(t, s, other))
	// The attacker's body with the victim's tag.
	forged := append(otherRaw[:len(otherRaw)-ed25519.SignatureSize:len(otherRaw)-ed25519.SignatureSize], raw[len(raw)-ed25519.SignatureSize:]...)
	mustReject(t, s, encodeTok(forged), state.ErrBadSignature)
}

func TestForeignKey(t *testing.T) {
	c := &clock{t0}
	ours := newSigner(t, c, key(1, 0xA1))
	cases := []struct {
		name   string
		signer *state.Signer
	}{
		{"same id other secret", newSigner(t, c, key(1, 0xB1))},
		{"unknown id", newSigner(t, c, key(9, 0xA1))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustReject(t, ours, sign(t, tc.signer, payload), state.ErrBadSignature)
		})
	}
}

// A version-1 token (HMAC-SHA256 tag with the key derived from
// STATE_KEY, as before Ed25519), which anyone holding STATE_KEY can mint,
// is refused, and so is a signature by STATE_KEY used directly as the
// Ed25519 seed.
func TestOldAndUnderivedTokensRefused(t *testing.T) {
	c := &clock{t0}
	k := key(1, 0xA1)
	s := newSigner(t, c, k)
	raw := decodeTok(t, sign(t, s, payload))
	body := bytes.Clone(raw[:len(raw)-ed25519.SignatureSize])

	v1 := bytes.Clone(body)
	v1[0] = 1
	d := hmac.New(sha256.New, k.Secret)
	d.Write([]byte("dromos state token v1"))
	m := hmac.New(sha256.New, d.Sum(nil))
	m.Write(v1)
	mustReject(t, s, encodeTok(m.Sum(v1)), state.ErrMalformed)

	raw2 := ed25519.Sign(ed25519.NewKeyFromSeed(k.Secret), append([]byte("dromos state token v2\x00"), body...))
	mustReject(t, s, encodeTok(append(bytes.Clone(body), raw2...)), state.ErrBadSignature)
}

// A verifier holding only public keys accepts the signer's tokens, refuses
// any other key's, and has no way to sign.
func TestVerifierNeedsOnlyPublicKeys(t *testing.T) {
	c := &clock{t0}
	s := newSigner(t, c, key(2, 0xA2), key(1, 0xA1))
	pubs, err := state.PublicKeys([]state.Key{key(2, 0xA2), key(1, 0xA1)})
	if err != nil {
		t.Fatal(err)
	}
	v, err := state.NewVerifier(pubs, state.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(sign(t, s, payload))
	if err != nil || got.ConnectionID != payload.ConnectionID {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
	old := newSigner(t, c, key(1, 0xA1))
	if _, err := v.Verify(sign(t, old, payload)); err != nil {
		t.Fatalf("token of the older key refused: %v", err)
	}
	other := newSigner(t, c, key(2, 0xB2))
	if _, err := v.Verify(sign(t, other, payload)); !errors.Is(err, state.ErrBadSignature) {
		t.Fatalf("token of a foreign key: %v, want ErrBadSignature", err)
	}
	for _, bad := range [][]state.PublicKey{nil, {{ID: 1, Key: make([]byte, 31)}}, {pubs[0], pubs[0]}} {
		if _, err := state.NewVerifier(bad, state.Options{Now: c.Now}); err == nil {
			t.Errorf("NewVerifier(%v) accepted bad keys", bad)
		}
	}
	if pk, _ := key(1, 0xA1).Public(); bytes.Equal(pk.Key, key(1, 0xA1).Secret) {
		t.Fatal("the public key is the secret")
	}
}

func TestTruncated(t *testing.T) {
	c := &clock{t0}
	s := newSigner(t, c, key(1, 0xA1))
	tok := sign(t, s, payload)
	for n := range len(tok) {
		mustReject(t, s, tok[:n], state.ErrMalformed, state.ErrBadSignature)
	}
	raw := decodeTok(t, tok)
	for n := range len(raw) {
		mustReject(t, s, encodeTok(raw[:n]), state.ErrMalformed, state.ErrBadSignature)
	}
	mustReject(t, s, tok+"A", state.ErrMalformed, state.ErrBadSignature)
	mustReject(t, s, encodeTok(append(raw, 0)), state.ErrMalformed, state.ErrBadSignature)
}

func TestValidityWindow(t *testing.T) {
	c := &clock{t0}
	s := newSigner(t, c, key(1, 0xA1))
	tok := sign(t, s, payload) // valid over [t0, t0+10m)
	cases := []struct {
		name    string
		now     time.Time
		wantErr error
	}{
		{"at issue", t0, nil},
		{"one second before expiry", t0.Add(state.DefaultLifetime - time.Second), nil},
		{"just before expiry", t0.Add(state.DefaultLifetime - time.Nanosecond), nil},
		{"at expiry", t0.Add(state.DefaultLifetime), state.ErrExpired},
		{"long after", t0.Add(24 * time.Hour), state.ErrExpired},
		{"clock a minute behind", t0.Add(-time.Minute), nil},
		{"clock just over a minute behind", t0.Add(-time.Minute - time.Second), state.ErrNotYetValid},
		{"clock an hour behind", t0.Add(-time.Hour), state.ErrNotYetValid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = tc.now
			_, err := s.Verify(tok)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			mustReject(t, s, tok, tc.wantErr)
		})
	}
}

func TestRotation(t *testing.T) {
	c := &clock{t0}
	oldKey, newKey := key(1, 0xA1), key(2, 0xA2)
	before := newSigner(t, c, oldKey)
	oldTok := sign(t, before, payload)

	after := newSigner(t, c, newKey, oldKey)
	if after.PrimaryID() != 2 {
		t.Fatalf("PrimaryID = %d, want 2", after.PrimaryID())
	}
	if _, err := after.Verify(oldTok); err != nil {
		t.Fatalf("rotated signer rejects token from old key: %v", err)
	}
	newTok := sign(t, after, payload)
	if decodeTok(t, newTok)[1] != 2 {
		t.Fatal("rotated signer does not sign with its primary key")
	}
	// The old broker still running during a rolling deploy cannot read new
	// tokens, and once the old key is retired old tokens fail.
	mustReject(t, before, newTok, state.ErrBadSignature)
	mustReject(t, newSigner(t, c, newKey), oldTok, state.ErrBadSignature)
}

func TestBadInput(t *testing.T) {
	c := &clock{t0}
	s := newSigner(t, c, key(1, 0xA1))
	tok := sign(t, s, payload)
	cases := []struct {
		name  string
		token string
		want  []error
	}{
		{"empty", "", []error{state.ErrMalformed}},
		{"garbage", "not a token!", []error{state.ErrMalformed}},
		{"std alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(tok) + "+/", []error{state.ErrMalformed}},
		{"padded", tok + "==", []error{state.ErrMalformed}},
		{"newline inside", tok[:10] + "\n" + tok[10:], []error{state.ErrMalformed}},
		{"crlf at end", tok + "\r\n", []error{state.ErrMalformed}},
		{"space", " " + tok, []error{state.ErrMalformed}},
		{"impossible length", "AAAAA", []error{state.ErrMalformed}},
		{"zeros", strings.Repeat("A", 200), []error{state.ErrMalformed}},
		{"max length", strings.Repeat("B", state.MaxTokenLen), []error{state.ErrMalformed, state.ErrBadSignature}},
		{"over max length", strings.Repeat("A", state.MaxTokenLen+1), []error{state.ErrMalformed}},
		{"huge", strings.Repeat("A", 1<<20), []error{state.ErrMalformed}},
		{"valid token twice", tok + tok, []error{state.ErrMalformed, state.ErrBadSignature}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustReject(t, s, tc.token, tc.want...)
		})
	}
}

// Non-canonical trailing bits decode to the same bytes under a lenient
// decoder; strict decoding keeps one spelling per token.
func TestNonCanonicalEncoding(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	c := &clock{t0}
	s := newSigner(t, c, key(1, 0xA1))
	tested := 0
	for _, nonce := range []string{"", "x", "xy"} { // one of three lengths leaves no spare bits
		p := payload
		p.Nonce = nonce
		tok := sign(t, s, p)
		if len(tok)%4 == 0 {
			continue
		}
		last := strings.IndexByte(alphabet, tok[len(tok)-1])
		alt := tok[:len(tok)-1] + string(alphabet[last^1]) // lowest bit is always spare
		lenient, err := base64.RawURLEncoding.DecodeString(alt)
		if err != nil || !bytes.Equal(lenient, decodeTok(t, tok)) {
			t.Fatalf("test construction: %q does not decode to the same bytes", alt)
		}
		mustReject(t, s, alt, state.ErrMalformed)
		tested++
	}
	if tested != 2 {
		t.Fatalf("exercised %d spellings, want 2", tested)
	}
}

func TestSignErrors(t *testing.T) {
	c := &clock{t0}
	s := newSigner(t, c, key(1, 0xA1))
	long := strings.Repeat("x", 256)
	cases := []struct {
		name string
		p    state.Payload
		want error
	}{
		{"connection id too long", state.Payload{ConnectionID: long}, state.ErrFieldTooLong},
		{"workspace id too long", state.Payload{WorkspaceID: long}, state.ErrFieldTooLong},
		{"provider id too long", state.Payload{ProviderID: long}, state.ErrFieldTooLong},
		{"nonce too long", state.Payload{Nonce: long}, state.ErrFieldTooLong},
		{"token too long", state.Payload{
			ConnectionID: long[:255], WorkspaceID: long[:255], ProviderID: long[:255], Nonce: long[:255],
		}, state.ErrTooLong},
		{"expiry before issue", state.Payload{IssuedAt: t0, ExpiresAt: t0.Add(-time.Second)}, state.ErrBadTimes},
		{"expiry equals issue", state.Payload{IssuedAt: t0, ExpiresAt: t0.Add(999 * time.Millisecond)}, state.ErrBadTimes},
		{"issued before epoch", state.Payload{IssuedAt: time.Unix(-5, 0), ExpiresAt: t0}, state.ErrBadTimes},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := s.Sign(tc.p)
			if !errors.Is(err, tc.want) || tok != "" {
				t.Fatalf("Sign = %q, %v; want error %v", tok, err, tc.want)
			}
			if strings.Contains(err.Error(), long[:200]) {
				t.Fatalf("error %q contains the field value", err)
			}
		})
	}
}

func TestNewSignerErrors(t *testing.T) {
	c := &clock{t0}
	cases := []struct {
		name    string
		primary state.Key
		older   []state.Key
		opts    state.Options
		want    error
	}{
		{"short key", state.Key{ID: 1, Secret: make([]byte, 31)}, nil, state.Options{Now: c.Now}, state.ErrBadKey},
		{"long key", state.Key{ID: 1, Secret: make([]byte, 33)}, nil, state.Options{Now: c.Now}, state.ErrBadKey},
		{"nil key", state.Key{ID: 1}, nil, state.Options{Now: c.Now}, state.ErrBadKey},
		{"bad older key", key(1, 1), []state.Key{{ID: 2, Secret: []byte("short")}}, state.Options{Now: c.Now}, state.ErrBadKey},
		{"duplicate of primary", key(1, 1), []state.Key{key(1, 2)}, state.Options{Now: c.Now}, state.ErrDuplicateKeyID},
		{"duplicate older", key(1, 1), []state.Key{key(2, 2), key(2, 3)}, state.Options{Now: c.Now}, state.ErrDuplicateKeyID},
		{"no clock", key(1, 1), nil, state.Options{}, state.ErrNoClock},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := state.NewSigner(tc.primary, tc.older, tc.opts)
			if !errors.Is(err, tc.want) || s != nil {
				t.Fatalf("NewSigner = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := state.NewSigner(key(1, 1), nil, state.Options{Now: c.Now, Lifetime: -time.Second}); err == nil {
		t.Fatal("negative lifetime accepted")
	}
}

func TestConcurrentUse(t *testing.T) {
	c := &clock{t0}
	s := newSigner(t, c, key(1, 0xA1))
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for range 100 {
				tok, err := s.Sign(payload)
				if err == nil {
					_, err = s.Verify(tok)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
