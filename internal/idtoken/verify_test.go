package idtoken

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// provider is the usual set of signing keys, all published in the JWKS.
type provider struct {
	rs, ps, es256, es384, ed signer
}

func newProvider(t testing.TB) provider {
	ps := newSigner(t, "rsa-ps", jose.PS256)
	return provider{
		rs:    newSigner(t, "rsa-1", jose.RS256),
		ps:    ps,
		es256: newSigner(t, "ec-256", jose.ES256),
		es384: newSigner(t, "ec-384", jose.ES384),
		ed:    newSigner(t, "ed-1", jose.EdDSA),
	}
}

func (p provider) jwks() []jose.JSONWebKey {
	return []jose.JSONWebKey{p.rs.jwk(), p.ps.jwk(), p.es256.jwk(), p.es384.jwk(), p.ed.jwk()}
}

func TestVerify(t *testing.T) {
	p := newProvider(t)
	srv := newJWKSServer(t, p.jwks()...)

	signed := func(s signer, mutate func(c map[string]any)) func(t *testing.T) string {
		return func(t *testing.T) string {
			c := validClaims()
			if mutate != nil {
				mutate(c)
			}
			return s.sign(t, c)
		}
	}
	rsaPub := &rsaKeyA().PublicKey
	pkixDER, err := x509.MarshalPKIXPublicKey(rsaPub)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1DER := x509.MarshalPKCS1PublicKey(rsaPub)
	pkixPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkixDER})
	pkcs1PEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1DER})
	hmacWith := func(secret []byte) func(t *testing.T) string {
		return func(t *testing.T) string { return hmacToken(t, "rsa-1", secret, validClaims()) }
	}

	tests := []struct {
		name      string
		token     func(t *testing.T) string
		expect    func(e *Expect)
		wantCheck string // empty: must verify
		wantErr   error
		check     func(t *testing.T, c Claims)
	}{
		{
			name:  "valid RS256",
			token: signed(p.rs, nil),
			check: func(t *testing.T, c Claims) {
				want := Claims{
					Issuer: testIssuer, Subject: "user-42", Email: "ada@example.com", EmailVerified: true,
					Audience: []string{testClientID}, Nonce: testNonce,
					IssuedAt: testNow.Add(-time.Minute), Expiry: testNow.Add(time.Hour),
				}
				if !reflect.DeepEqual(c, want) {
					t.Errorf("claims\n got %+v\nwant %+v", c, want)
				}
			},
		},
		{name: "valid PS256", token: signed(p.ps, nil)},
		{name: "valid ES256", token: signed(p.es256, nil)},
		{name: "valid ES384", token: signed(p.es384, nil)},
		{name: "valid EdDSA", token: signed(p.ed, nil)},
		{
			name: "valid with several audiences, our azp, the other one trusted",
			token: signed(p.rs, func(c map[string]any) {
				c["aud"] = []string{testClientID, "other-api"}
				c["azp"] = testClientID
			}),
			expect: func(e *Expect) { e.TrustedAudiences = []string{"other-api"} },
			check: func(t *testing.T, c Claims) {
				if c.AuthorizedParty != testClientID || len(c.Audience) != 2 {
					t.Errorf("azp %q aud %v", c.AuthorizedParty, c.Audience)
				}
			},
		},
		{
			name:   "no nonce expected, token has none",
			token:  signed(p.rs, func(c map[string]any) { delete(c, "nonce") }),
			expect: func(e *Expect) { e.Nonce = "" },
		},
		{
			name:   "no nonce expected, token has one",
			token:  signed(p.rs, nil),
			expect: func(e *Expect) { e.Nonce = "" },
		},
		{
			name:  "email_verified as a string",
			token: signed(p.rs, func(c map[string]any) { c["email_verified"] = "true" }),
			check: func(t *testing.T, c Claims) {
				if !c.EmailVerified {
					t.Error("EmailVerified = false, want true")
				}
			},
		},
		{
			name:  "expired within skew is accepted",
			token: signed(p.rs, func(c map[string]any) { c["exp"] = testNow.Add(-time.Minute).Unix() }),
		},
		{
			name:  "fractional dates",
			token: signed(p.rs, func(c map[string]any) { c["iat"] = float64(testNow.Unix()) - 0.5 }),
		},
		{
			name:      "expired",
			token:     signed(p.rs, func(c map[string]any) { c["exp"] = testNow.Add(-3 * time.Minute).Unix() }),
			wantCheck: CheckExpired, wantErr: ErrExpired,
		},
		{
			name:      "missing exp",
			token:     signed(p.rs, func(c map[string]any) { delete(c, "exp") }),
			wantCheck: CheckExpired, wantErr: ErrMissingClaim,
		},
		{
			name:      "iat in the future",
			token:     signed(p.rs, func(c map[string]any) { c["iat"] = testNow.Add(5 * time.Minute).Unix() }),
			wantCheck: CheckIssuedAt, wantErr: ErrIssuedInFuture,
		},
		{
			name:  "iat in the future within skew",
			token: signed(p.rs, func(c map[string]any) { c["iat"] = testNow.Add(time.Minute).Unix() }),
		},
		{
			name:      "iat too old",
			token:     signed(p.rs, func(c map[string]any) { c["iat"] = testNow.Add(-25 * time.Hour).Unix() }),
			wantCheck: CheckIssuedAt, wantErr: ErrIssuedTooLongAgo,
		},
		{
			name:      "missing iat",
			token:     signed(p.rs, func(c map[string]any) { delete(c, "iat") }),
			wantCheck: CheckIssuedAt, wantErr: ErrMissingClaim,
		},
		{
			name:      "nbf in the future",
			token:     signed(p.rs, func(c map[string]any) { c["nbf"] = testNow.Add(10 * time.Minute).Unix() }),
			wantCheck: CheckIssuedAt, wantErr: ErrNotYetValid,
		},
		{
			name:      "date as a string",
			token:     signed(p.rs, func(c map[string]any) { c["exp"] = "tomorrow" }),
			wantCheck: CheckMalformed, wantErr: ErrMalformed,
		},
		{
			name:      "wrong iss",
			token:     signed(p.rs, func(c map[string]any) { c["iss"] = "https://evil.example" }),
			wantCheck: CheckIssuer, wantErr: ErrIssuerMismatch,
		},
		{
			name:   "Google's issuer without its scheme",
			token:  signed(p.rs, func(c map[string]any) { c["iss"] = "accounts.google.com" }),
			expect: func(e *Expect) { e.Issuer = "https://accounts.google.com" },
			check: func(t *testing.T, c Claims) {
				if c.Issuer != "https://accounts.google.com" {
					t.Errorf("issuer %q, want the registered spelling", c.Issuer)
				}
			},
		},
		{
			name:      "a scheme-less issuer for anyone but Google",
			token:     signed(p.rs, func(c map[string]any) { c["iss"] = strings.TrimPrefix(testIssuer, "https://") }),
			wantCheck: CheckIssuer, wantErr: ErrIssuerMismatch,
		},
		{
			name:      "iss with a trailing slash",
			token:     signed(p.rs, func(c map[string]any) { c["iss"] = testIssuer + "/" }),
			wantCheck: CheckIssuer, wantErr: ErrIssuerMismatch,
		},
		{
			name:      "missing iss",
			token:     signed(p.rs, func(c map[string]any) { delete(c, "iss") }),
			wantCheck: CheckIssuer, wantErr: ErrMissingClaim,
		},
		{
			name:      "wrong aud",
			token:     signed(p.rs, func(c map[string]any) { c["aud"] = "another-client" }),
			wantCheck: CheckAudience, wantErr: ErrAudienceMismatch,
		},
		{
			name:      "missing aud",
			token:     signed(p.rs, func(c map[string]any) { delete(c, "aud") }),
			wantCheck: CheckAudience, wantErr: ErrMissingClaim,
		},
		{
			name:      "empty aud array",
			token:     signed(p.rs, func(c map[string]any) { c["aud"] = []string{} }),
			wantCheck: CheckAudience, wantErr: ErrMissingClaim,
		},
		{
			// OIDC Core 3.1.3.7 step 3: an audience the client does not
			// trust makes the token someone else's too; azp alone is not
			// enough.
			name: "several audiences, our azp, the other one not trusted",
			token: signed(p.rs, func(c map[string]any) {
				c["aud"] = []string{testClientID, "other-api"}
				c["azp"] = testClientID
			}),
			wantCheck: CheckAudience, wantErr: ErrUntrustedAudience,
		},
		{
			name: "several audiences, one trusted, one not",
			token: signed(p.rs, func(c map[string]any) {
				c["aud"] = []string{testClientID, "other-api", "third-api"}
				c["azp"] = testClientID
			}),
			expect:    func(e *Expect) { e.TrustedAudiences = []string{"other-api"} },
			wantCheck: CheckAudience, wantErr: ErrUntrustedAudience,
		},
		{
			name:      "several audiences without azp",
			token:     signed(p.rs, func(c map[string]any) { c["aud"] = []string{testClientID, "other-api"} }),
			expect:    func(e *Expect) { e.TrustedAudiences = []string{"other-api"} },
			wantCheck: CheckAZP, wantErr: ErrMissingClaim,
		},
		{
			name: "several audiences, azp of another client",
			token: signed(p.rs, func(c map[string]any) {
				c["aud"] = []string{testClientID, "other-api"}
				c["azp"] = "other-api"
			}),
			expect:    func(e *Expect) { e.TrustedAudiences = []string{"other-api"} },
			wantCheck: CheckAZP, wantErr: ErrAZPMismatch,
		},
		{
			name:      "single audience, azp mismatch",
			token:     signed(p.rs, func(c map[string]any) { c["azp"] = "other-client" }),
			wantCheck: CheckAZP, wantErr: ErrAZPMismatch,
		},
		{
			name:      "wrong nonce",
			token:     signed(p.rs, func(c map[string]any) { c["nonce"] = "replayed-nonce" }),
			wantCheck: CheckNonce, wantErr: ErrNonceMismatch,
		},
		{
			name:      "missing nonce",
			token:     signed(p.rs, func(c map[string]any) { delete(c, "nonce") }),
			wantCheck: CheckNonce, wantErr: ErrMissingClaim,
		},
		{
			name:      "empty sub",
			token:     signed(p.rs, func(c map[string]any) { c["sub"] = "" }),
			wantCheck: CheckSubject, wantErr: ErrMissingClaim,
		},
		{
			name:      "missing sub",
			token:     signed(p.rs, func(c map[string]any) { delete(c, "sub") }),
			wantCheck: CheckSubject, wantErr: ErrMissingClaim,
		},
		{
			name:      "alg none",
			token:     func(*testing.T) string { return unsignedToken("rsa-1", validClaims()) },
			wantCheck: CheckAlgorithm, wantErr: ErrAlgorithmNotAllowed,
		},
		{
			name:      "alg none even when the caller lists it",
			token:     func(*testing.T) string { return unsignedToken("rsa-1", validClaims()) },
			expect:    func(e *Expect) { e.Algorithms = []string{"none", "RS256"} },
			wantCheck: CheckAlgorithm, wantErr: ErrAlgorithmNotAllowed,
		},
		{
			name:      "HS256 keyed with the public key, PKIX PEM",
			token:     hmacWith(pkixPEM),
			wantCheck: CheckAlgorithm, wantErr: ErrAlgorithmNotAllowed,
		},
		{
			name:      "HS256 keyed with the public key, PKCS1 PEM",
			token:     hmacWith(pkcs1PEM),
			wantCheck: CheckAlgorithm, wantErr: ErrAlgorithmNotAllowed,
		},
		{
			name:      "HS256 keyed with the public key, PKIX DER",
			token:     hmacWith(pkixDER),
			wantCheck: CheckAlgorithm, wantErr: ErrAlgorithmNotAllowed,
		},
		{
			name:      "HS256 keyed with the public key, PKCS1 DER",
			token:     hmacWith(pkcs1DER),
			wantCheck: CheckAlgorithm, wantErr: ErrAlgorithmNotAllowed,
		},
		{
			name:      "HS256 even when the caller lists it",
			token:     hmacWith(pkixPEM),
			expect:    func(e *Expect) { e.Algorithms = []string{"HS256", "RS256"} },
			wantCheck: CheckAlgorithm, wantErr: ErrAlgorithmNotAllowed,
		},
		{
			name:      "only symmetric algorithms listed",
			token:     hmacWith(pkixPEM),
			expect:    func(e *Expect) { e.Algorithms = []string{"HS256"} },
			wantCheck: CheckAlgorithm, wantErr: ErrInvalidExpect,
		},
		{
			name:      "algorithm outside the caller's list",
			token:     signed(p.rs, nil),
			expect:    func(e *Expect) { e.Algorithms = []string{"ES256"} },
			wantCheck: CheckAlgorithm, wantErr: ErrAlgorithmNotAllowed,
		},
		{
			name: "ES256 header naming the RSA key",
			token: func(t *testing.T) string {
				s := p.es256
				s.kid = p.rs.kid
				return s.sign(t, validClaims())
			},
			wantCheck: CheckSignature, wantErr: ErrUnknownKey,
		},
		{
			name: "PS256 header naming a key restricted to RS256",
			token: func(t *testing.T) string {
				s := p.ps
				s.kid = p.rs.kid
				return s.sign(t, validClaims())
			},
			wantCheck: CheckSignature, wantErr: ErrUnknownKey,
		},
		{
			name: "tampered payload",
			token: func(t *testing.T) string {
				parts := segments(t, p.rs.sign(t, validClaims()))
				c := validClaims()
				c["sub"] = "admin"
				body, _ := json.Marshal(c)
				parts[1] = base64.RawURLEncoding.EncodeToString(body)
				return strings.Join(parts, ".")
			},
			wantCheck: CheckSignature, wantErr: ErrBadSignature,
		},
		{
			name: "tampered signature",
			token: func(t *testing.T) string {
				parts := segments(t, p.es256.sign(t, validClaims()))
				sig, err := base64.RawURLEncoding.DecodeString(parts[2])
				if err != nil {
					t.Fatal(err)
				}
				sig[len(sig)/2] ^= 0x01
				parts[2] = base64.RawURLEncoding.EncodeToString(sig)
				return strings.Join(parts, ".")
			},
			wantCheck: CheckSignature, wantErr: ErrBadSignature,
		},
		{
			name: "signature of another token",
			token: func(t *testing.T) string {
				a := segments(t, p.rs.sign(t, validClaims()))
				c := validClaims()
				c["sub"] = "admin"
				b := segments(t, p.rs.sign(t, c))
				return a[0] + "." + b[1] + "." + a[2]
			},
			wantCheck: CheckSignature, wantErr: ErrBadSignature,
		},
		{
			name:      "garbage",
			token:     func(*testing.T) string { return "not-a-jwt" },
			wantCheck: CheckMalformed, wantErr: ErrMalformed,
		},
		{
			name: "JSON serialization instead of compact",
			token: func(t *testing.T) string {
				parts := segments(t, p.rs.sign(t, validClaims()))
				return `{"protected":"` + parts[0] + `","payload":"` + parts[1] + `","signature":"` + parts[2] + `"}`
			},
			wantCheck: CheckMalformed, wantErr: ErrMalformed,
		},
		{
			name: "payload not JSON",
			token: func(t *testing.T) string {
				sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: rsaKeyA()},
					(&jose.SignerOptions{}).WithHeader("kid", "rsa-1"))
				if err != nil {
					t.Fatal(err)
				}
				obj, err := sig.Sign([]byte("definitely not json"))
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := obj.CompactSerialize()
				return raw
			},
			wantCheck: CheckMalformed, wantErr: ErrMalformed,
		},
		{
			name:      "oversized token",
			token:     func(*testing.T) string { return strings.Repeat("a", maxTokenSize+1) },
			wantCheck: CheckMalformed, wantErr: ErrMalformed,
		},
		{
			name:      "no issuer expected",
			token:     signed(p.rs, nil),
			expect:    func(e *Expect) { e.Issuer = "" },
			wantCheck: CheckIssuer, wantErr: ErrInvalidExpect,
		},
		{
			name:      "no client id expected",
			token:     signed(p.rs, func(c map[string]any) { c["aud"] = "" }),
			expect:    func(e *Expect) { e.ClientID = "" },
			wantCheck: CheckAudience, wantErr: ErrInvalidExpect,
		},
	}
	v, _ := newVerifier(t, srv, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.token(t)
			want := expect(srv)
			if tt.expect != nil {
				tt.expect(&want)
			}
			claims, err := v.Verify(context.Background(), raw, want)
			if tt.wantCheck == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if tt.check != nil {
					tt.check(t, claims)
				}
				return
			}
			var ve *Error
			if !errors.As(err, &ve) {
				t.Fatalf("Verify error = %v, want *Error with check %q", err, tt.wantCheck)
			}
			if ve.Check != tt.wantCheck || !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify error = %q (check %q), want check %q wrapping %q", err, ve.Check, tt.wantCheck, tt.wantErr)
			}
			if !reflect.DeepEqual(claims, Claims{}) {
				t.Errorf("claims returned with an error: %+v", claims)
			}
			for _, part := range strings.Split(raw, ".") {
				if len(part) > 8 && strings.Contains(err.Error(), part) {
					t.Errorf("error message contains part of the token: %q", err)
				}
			}
		})
	}
	// All cases share one key set, fetched once: no case caused a refetch
	// except the two header/key mismatches, which share one refetch window.
	if got := srv.count(); got != 2 {
		t.Errorf("JWKS requests = %d, want 2", got)
	}
}

func TestVerifyDoesNotFetchKeysForRejectedAlgorithms(t *testing.T) {
	p := newProvider(t)
	srv := newJWKSServer(t, p.jwks()...)
	v, _ := newVerifier(t, srv, nil)
	_, err := v.Verify(context.Background(), unsignedToken("rsa-1", validClaims()), expect(srv))
	if !errors.Is(err, ErrAlgorithmNotAllowed) {
		t.Fatalf("Verify = %v", err)
	}
	if got := srv.count(); got != 0 {
		t.Errorf("JWKS requests = %d, want 0", got)
	}
}
