package demoprovider

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func fuzzProvider(tb testing.TB) *Provider {
	tb.Helper()
	clock := newTestClock()
	p, err := New(Options{
		Issuer:       "http://127.0.0.1:8080/demo",
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		RedirectURIs: []string{"http://127.0.0.1:8080/auth/callback", "http://localhost/cb?x=1"},
		SigningKey:   testKey(),
		Now:          clock.Now,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func FuzzParseAuthorize(f *testing.F) {
	p := fuzzProvider(f)
	valid := url.Values{
		"client_id": {testClientID}, "redirect_uri": {"http://127.0.0.1:8080/auth/callback"},
		"response_type": {"code"}, "scope": {"openid email"}, "state": {"s"}, "nonce": {"n"},
		"code_challenge": {challengeOf(testVerifier)}, "code_challenge_method": {"S256"},
	}
	f.Add(valid.Encode())
	f.Add(valid.Encode() + "&scope=profile")
	f.Add("client_id=" + testClientID + "&redirect_uri=http%3A%2F%2Flocalhost%2Fcb%3Fx%3D1&prompt=none")
	f.Add("client_id=x&redirect_uri=https://evil.example/")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		req, err := p.parseAuthorize(q)
		var pe *pageError
		var oe *oauthError
		switch {
		case err == nil:
			if !p.redirectURIs[req.redirectURI] || !isS256Challenge(req.codeChallenge) || len(req.scopes) == 0 {
				t.Fatalf("accepted an invalid request: %+v", req)
			}
			for _, s := range req.scopes {
				if !slices.Contains(supportedScopes(), s) {
					t.Fatalf("accepted scope %q", s)
				}
			}
			if len(req.state) > maxParamLen || len(req.nonce) > maxParamLen {
				t.Fatal("accepted an oversized state or nonce")
			}
		case errors.As(err, &oe):
			// An error that redirects must redirect to a registered URI.
			if !p.redirectURIs[req.redirectURI] {
				t.Fatalf("redirecting error for unregistered URI %q", req.redirectURI)
			}
			if strings.Contains(oe.description, raw) && raw != "" {
				t.Fatalf("error description reflects the request: %q", oe.description)
			}
		case errors.As(err, &pe):
		default:
			t.Fatalf("unexpected error type %T", err)
		}
	})
}

func FuzzVerifyAccess(f *testing.F) {
	p := fuzzProvider(f)
	now := p.now()
	valid := p.forTest(f, "openid")
	f.Add(valid)
	f.Add(valid + "x")
	f.Add(strings.Replace(valid, ".", "..", 1))
	f.Add("e30.e30.")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := p.verifyAccess(token, now.Unix())
		if err != nil {
			if !errors.Is(err, errInvalidToken) {
				t.Fatalf("error %v is not errInvalidToken", err)
			}
			return
		}
		if c.Issuer != p.issuer || c.Audience != p.clientID || c.JWTID == "" || c.Expiry <= now.Unix() {
			t.Fatalf("accepted claims %+v", c)
		}
	})
}

func FuzzParseBasic(f *testing.F) {
	f.Add("dromos-dev", "s3cret", "Basic ZHJvbW9zLWRldjpzM2NyZXQ=")
	f.Add("a:b", "c d+e%", "basic Og==")
	f.Add("", "x", "Bearer abc")
	f.Fuzz(func(t *testing.T, id, secret, header string) {
		// Arbitrary headers must never panic.
		parseBasic(header)
		// What a compliant client encodes must decode to the same pair.
		enc := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
		gotID, gotSecret, ok := parseBasic(enc)
		if id == "" {
			if ok {
				t.Fatal("accepted an empty client id")
			}
			return
		}
		if !ok || gotID != id || gotSecret != secret {
			t.Fatalf("round trip of %q/%q gave %q/%q ok=%t", id, secret, gotID, gotSecret, ok)
		}
	})
}

func FuzzPKCEMatches(f *testing.F) {
	f.Add(testVerifier)
	f.Add(strings.Repeat("~", 128))
	f.Add(strings.Repeat("a", 42))
	f.Add("has space but long enough to pass the length check ok")
	f.Fuzz(func(t *testing.T, verifier string) {
		wellFormed := len(verifier) >= 43 && len(verifier) <= 128 &&
			strings.Trim(verifier, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") == ""
		if got := pkceMatches(verifier, challengeOf(verifier)); got != wellFormed {
			t.Fatalf("pkceMatches(%q, its own challenge) = %t, want %t", verifier, got, wellFormed)
		}
		if pkceMatches(verifier, challengeOf(verifier+"x")) {
			t.Fatal("matched another verifier's challenge")
		}
	})
}

func BenchmarkVerifyAccess(b *testing.B) {
	p := fuzzProvider(b)
	token := p.forTest(b, "openid email")
	now := p.now().Unix()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.verifyAccess(token, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRefreshGrant(b *testing.B) {
	e := newEnv(b, nil)
	rt := e.mustTokens(b, "openid offline_access", "demo").str("refresh_token")
	h := e.p.Handler()
	b.ReportAllocs()
	for b.Loop() {
		body := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode()
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(testClientID, url.QueryEscape(testClientSecret))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var resp tokenResponse
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &resp) != nil {
			b.Fatalf("refresh: %d %s", rec.Code, rec.Body)
		}
		rt = resp.RefreshToken
		e.clock.Advance(time.Millisecond)
	}
}
