package idtoken

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
)

func TestUnknownKidAfterRotationRefetchesOnce(t *testing.T) {
	a := signer{kid: "a", alg: jose.RS256, priv: rsaKeyA()}
	b := signer{kid: "b", alg: jose.RS256, priv: rsaKeyB()}
	srv := newJWKSServer(t, a.jwk())
	v, _ := newVerifier(t, srv, nil)
	ctx := context.Background()

	if _, err := v.Verify(ctx, a.sign(t, validClaims()), expect(srv)); err != nil {
		t.Fatal(err)
	}
	srv.setKeys(t, b.jwk()) // the provider rotates: a is gone, b is new
	if _, err := v.Verify(ctx, b.sign(t, validClaims()), expect(srv)); err != nil {
		t.Fatalf("Verify with the rotated key: %v", err)
	}
	if got := srv.count(); got != 2 {
		t.Errorf("JWKS requests = %d, want 2 (initial fetch and one refetch)", got)
	}
	// The withdrawn key no longer verifies anything.
	if _, err := v.Verify(ctx, a.sign(t, validClaims()), expect(srv)); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Verify with the withdrawn key = %v, want ErrUnknownKey", err)
	}
}

func TestUnknownKidWithoutRotationIsRateLimited(t *testing.T) {
	a := signer{kid: "a", alg: jose.RS256, priv: rsaKeyA()}
	forged := signer{kid: "forged", alg: jose.RS256, priv: rsaKeyB()}
	srv := newJWKSServer(t, a.jwk())
	v, clk := newVerifier(t, srv, nil)
	ctx := context.Background()
	if _, err := v.Verify(ctx, a.sign(t, validClaims()), expect(srv)); err != nil {
		t.Fatal(err)
	}

	attempt := func(wantRequests int) {
		t.Helper()
		_, err := v.Verify(ctx, forged.sign(t, validClaims()), expect(srv))
		var ve *Error
		if !errors.As(err, &ve) || ve.Check != CheckSignature || !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Verify with an unknown kid = %v, want signature/ErrUnknownKey", err)
		}
		if got := srv.count(); got != wantRequests {
			t.Fatalf("JWKS requests = %d, want %d", got, wantRequests)
		}
	}
	attempt(2) // one refetch, the key is still unknown
	attempt(2) // within the interval: no request
	clk.Advance(DefaultKeyRefetchInterval - time.Second)
	attempt(2)
	clk.Advance(time.Second)
	attempt(3) // the interval has passed: one more refetch is allowed

	// The known key keeps working throughout.
	if _, err := v.Verify(ctx, a.sign(t, validClaims()), expect(srv)); err != nil {
		t.Fatalf("Verify with the known key: %v", err)
	}
}

func TestConcurrentVerificationsDuringRotationShareOneRefetch(t *testing.T) {
	a := signer{kid: "a", alg: jose.RS256, priv: rsaKeyA()}
	b := signer{kid: "b", alg: jose.ES256, priv: newSigner(t, "b", jose.ES256).priv}
	srv := newJWKSServer(t, a.jwk())
	v, _ := newVerifier(t, srv, nil)
	ctx := context.Background()
	if _, err := v.Verify(ctx, a.sign(t, validClaims()), expect(srv)); err != nil {
		t.Fatal(err)
	}

	srv.setKeys(t, a.jwk(), b.jwk())
	gate := make(chan struct{})
	srv.setGate(gate)
	const callers = 8
	joined := make(chan struct{}, callers)
	v.onJoin = func() { joined <- struct{}{} }
	raw := b.sign(t, validClaims())

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			_, err := v.Verify(ctx, raw, expect(srv))
			errs <- err
		})
	}
	// Every caller is waiting on the single held-up fetch before it may end.
	for range callers {
		receive(t, joined)
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Verify during rotation: %v", err)
		}
	}
	if got := srv.count(); got != 2 {
		t.Errorf("JWKS requests = %d, want 2 (initial fetch and one shared refetch)", got)
	}
}

func TestJWKSUnavailable(t *testing.T) {
	a := signer{kid: "a", alg: jose.RS256, priv: rsaKeyA()}
	srv := newJWKSServer(t, a.jwk())
	srv.setStatus(http.StatusServiceUnavailable)
	v, clk := newVerifier(t, srv, nil)
	ctx := context.Background()
	raw := a.sign(t, validClaims())

	for range 3 {
		_, err := v.Verify(ctx, raw, expect(srv))
		var ve *Error
		if !errors.As(err, &ve) || ve.Check != CheckJWKS || !errors.Is(err, ErrJWKSUnavailable) {
			t.Fatalf("Verify = %v, want jwks/ErrJWKSUnavailable", err)
		}
	}
	if got := srv.count(); got != 1 {
		t.Fatalf("JWKS requests = %d, want 1 (failures are remembered)", got)
	}
	srv.setStatus(0)
	clk.Advance(DefaultKeyRefetchInterval)
	if _, err := v.Verify(ctx, raw, expect(srv)); err != nil {
		t.Fatalf("Verify after recovery: %v", err)
	}
}

func TestJWKSRedirectNotFollowed(t *testing.T) {
	a := signer{kid: "a", alg: jose.RS256, priv: rsaKeyA()}
	target := newJWKSServer(t, a.jwk())
	redirector := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusFound))
	t.Cleanup(redirector.Close)
	v := NewVerifier(Options{Now: func() time.Time { return testNow }})
	want := Expect{Issuer: testIssuer, ClientID: testClientID, JWKSURL: redirector.URL, Nonce: testNonce}
	_, err := v.Verify(context.Background(), a.sign(t, validClaims()), want)
	if !errors.Is(err, ErrJWKSUnavailable) {
		t.Fatalf("Verify = %v, want ErrJWKSUnavailable", err)
	}
	if got := target.count(); got != 0 {
		t.Errorf("redirect target requested %d times, want 0", got)
	}
}

func TestOldKeySetIsRefreshed(t *testing.T) {
	a := signer{kid: "a", alg: jose.RS256, priv: rsaKeyA()}
	b := signer{kid: "b", alg: jose.RS256, priv: rsaKeyB()}
	ctx := context.Background()

	t.Run("withdrawn key stops verifying", func(t *testing.T) {
		srv := newJWKSServer(t, a.jwk())
		v, clk := newVerifier(t, srv, nil)
		if _, err := v.Verify(ctx, a.sign(t, validClaims()), expect(srv)); err != nil {
			t.Fatal(err)
		}
		srv.setKeys(t, b.jwk())
		clk.Advance(DefaultKeySetMaxAge)
		_, err := v.Verify(ctx, a.sign(t, validClaimsAt(clk.Now())), expect(srv))
		if !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Verify with a withdrawn key = %v, want ErrUnknownKey", err)
		}
		if got := srv.count(); got != 2 {
			t.Errorf("JWKS requests = %d, want 2", got)
		}
	})
	t.Run("outage keeps the old keys", func(t *testing.T) {
		srv := newJWKSServer(t, a.jwk())
		v, clk := newVerifier(t, srv, nil)
		if _, err := v.Verify(ctx, a.sign(t, validClaims()), expect(srv)); err != nil {
			t.Fatal(err)
		}
		srv.setStatus(http.StatusInternalServerError)
		clk.Advance(DefaultKeySetMaxAge)
		for range 2 {
			if _, err := v.Verify(ctx, a.sign(t, validClaimsAt(clk.Now())), expect(srv)); err != nil {
				t.Fatalf("Verify during a JWKS outage: %v", err)
			}
		}
		if got := srv.count(); got != 2 {
			t.Errorf("JWKS requests = %d, want 2 (one refresh attempt per interval)", got)
		}
	})
}

func validClaimsAt(now time.Time) map[string]any {
	c := validClaims()
	c["iat"] = now.Add(-time.Minute).Unix()
	c["exp"] = now.Add(time.Hour).Unix()
	return c
}

func TestUnusableKeysAreSkipped(t *testing.T) {
	good := signer{kid: "good", alg: jose.RS256, priv: rsaKeyA()}
	weak := signer{kid: "weak", alg: jose.RS256, priv: rsaKeyWeak()}
	weakJWK, _ := json.Marshal(weak.jwk())
	goodJWK, _ := json.Marshal(good.jwk())
	encJWK := good.jwk()
	encJWK.KeyID, encJWK.Use = "enc", "enc"
	encBody, _ := json.Marshal(encJWK)
	body := []byte(`{"keys":[
		{"kty":"oct","kid":"hmac","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"},
		{"kty":"PQ-FUTURE","kid":"new"},
		` + string(weakJWK) + `,
		` + string(encBody) + `,
		` + string(goodJWK) + `]}`)

	srv := newJWKSServer(t)
	srv.setBody(body)
	v, _ := newVerifier(t, srv, nil)
	ctx := context.Background()
	if _, err := v.Verify(ctx, good.sign(t, validClaims()), expect(srv)); err != nil {
		t.Fatalf("Verify with the usable key: %v", err)
	}
	for _, s := range []signer{weak, {kid: "enc", alg: jose.RS256, priv: rsaKeyA()}} {
		if _, err := v.Verify(ctx, s.sign(t, validClaims()), expect(srv)); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("Verify with key %q = %v, want ErrUnknownKey", s.kid, err)
		}
	}

	srv.setBody([]byte(`{"keys":[{"kty":"oct","kid":"hmac","k":"c2VjcmV0"}]}`))
	v2, _ := newVerifier(t, srv, nil)
	if _, err := v2.Verify(ctx, good.sign(t, validClaims()), expect(srv)); !errors.Is(err, ErrJWKSUnavailable) {
		t.Errorf("Verify against a set without usable keys = %v, want ErrJWKSUnavailable", err)
	}
}

func TestKidlessTokenTriesCompatibleKeys(t *testing.T) {
	a := signer{kid: "a", alg: jose.RS256, priv: rsaKeyA()}
	e := newSigner(t, "e", jose.ES256)
	srv := newJWKSServer(t, e.jwk(), a.jwk())
	v, _ := newVerifier(t, srv, nil)
	noKid := a
	noKid.kid = ""
	if _, err := v.Verify(context.Background(), noKid.sign(t, validClaims()), expect(srv)); err != nil {
		t.Fatalf("Verify without kid: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	a := signer{kid: "a", alg: jose.RS256, priv: rsaKeyA()}
	srv := newJWKSServer(t, a.jwk())
	reg := prometheus.NewRegistry()
	v, _ := newVerifier(t, srv, reg)
	ctx := context.Background()
	_, _ = v.Verify(ctx, a.sign(t, validClaims()), expect(srv))
	expired := validClaims()
	expired["exp"] = testNow.Add(-time.Hour).Unix()
	_, _ = v.Verify(ctx, a.sign(t, expired), expect(srv))
	_, _ = v.Verify(ctx, unsignedToken("a", validClaims()), expect(srv))

	for result, want := range map[string]float64{
		"success": 1, CheckExpired: 1, CheckAlgorithm: 1, CheckNonce: 0,
	} {
		if got := counterValue(t, reg, result); got != want {
			t.Errorf("oidc_verifications_total{result=%q} = %v, want %v", result, got, want)
		}
	}
	// A second component on the same registry shares the collectors.
	NewMetrics(reg).observe(0, nil)
	if got := counterValue(t, reg, "success"); got != 2 {
		t.Errorf("success after shared registration = %v, want 2", got)
	}
	var none *Metrics
	none.observe(time.Second, nil)
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256} {
		b.Run(string(alg), func(b *testing.B) {
			s := newSigner(b, "k", alg)
			srv := newJWKSServer(b, s.jwk())
			v, _ := newVerifier(b, srv, nil)
			raw := s.sign(b, validClaims())
			ctx := context.Background()
			if _, err := v.Verify(ctx, raw, expect(srv)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := v.Verify(ctx, raw, expect(srv)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
