package demoprovider

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestUserinfoClaimsFollowScope(t *testing.T) {
	tests := []struct {
		scope string
		want  map[string]any
	}{
		{"openid", map[string]any{"sub": Subject("carol")}},
		{"openid email", map[string]any{
			"sub": Subject("carol"), "email": "carol@demo.dromos.local", "email_verified": true,
		}},
		{"openid profile", map[string]any{
			"sub": Subject("carol"), "name": "Demo user carol", "preferred_username": "carol",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.scope, func(t *testing.T) {
			e := newEnv(t, nil)
			at := e.mustTokens(t, tc.scope, "Carol").str("access_token")
			ui := e.userinfo(t, at)
			if ui.status != http.StatusOK || !reflect.DeepEqual(ui.body, tc.want) {
				t.Errorf("got %d %v, want %v", ui.status, ui.body, tc.want)
			}
		})
	}
}

func TestUserinfoDistinguishesUsers(t *testing.T) {
	e := newEnv(t, nil)
	a := e.userinfo(t, e.mustTokens(t, "openid", "demo").str("access_token"))
	b := e.userinfo(t, e.mustTokens(t, "openid", "other").str("access_token"))
	if a.body["sub"] == b.body["sub"] || a.body["sub"] != Subject("demo") {
		t.Errorf("subs %v and %v", a.body["sub"], b.body["sub"])
	}
}

func TestUserinfoPostWithFormToken(t *testing.T) {
	e := newEnv(t, nil)
	at := e.mustTokens(t, "openid", "demo").str("access_token")
	resp, err := e.raw.PostForm(e.issuer+"/userinfo", url.Values{"access_token": {at}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
}

func TestUserinfoRejectsBadTokens(t *testing.T) {
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		token      func(t *testing.T, e *env, call tokenCall) string
		wantStatus int
		wantError  string
	}{
		{"valid", func(_ *testing.T, _ *env, c tokenCall) string { return c.str("access_token") }, 200, ""},
		{"no token", func(*testing.T, *env, tokenCall) string { return "" }, 401, ""},
		{"garbage", func(*testing.T, *env, tokenCall) string { return "not.a.jwt" }, 401, "invalid_token"},
		{"ID token as access token", func(_ *testing.T, _ *env, c tokenCall) string { return c.str("id_token") }, 401, "invalid_token"},
		{"refresh token as access token", func(_ *testing.T, _ *env, c tokenCall) string { return c.str("refresh_token") }, 401, "invalid_token"},
		{"tampered payload", func(_ *testing.T, _ *env, c tokenCall) string {
			parts := strings.Split(c.str("access_token"), ".")
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			payload = bytes.Replace(payload, []byte(Subject("demo")), []byte(Subject("admin")), 1)
			parts[1] = base64.RawURLEncoding.EncodeToString(payload)
			return strings.Join(parts, ".")
		}, 401, "invalid_token"},
		{"access claims typed as an ID token", func(t *testing.T, e *env, c tokenCall) string {
			_, claims := decodeAccessToken(t, c.str("access_token"))
			tok, err := sign(e.p.keys.id, claims)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}, 401, "invalid_token"},
		{"signed by another key", func(t *testing.T, e *env, _ tokenCall) string {
			o := e.opts
			o.SigningKey = otherKey
			forger, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			return forger.forTest(t, "openid")
		}, 401, "invalid_token"},
		{"another issuer", func(t *testing.T, e *env, _ tokenCall) string {
			o := e.opts
			o.Issuer = "http://127.0.0.1:1/demo"
			forger, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			return forger.forTest(t, "openid")
		}, 401, "invalid_token"},
		{"expired", func(_ *testing.T, e *env, c tokenCall) string {
			e.clock.Advance(DefaultAccessTokenTTL)
			return c.str("access_token")
		}, 401, "invalid_token"},
		{"revoked", func(t *testing.T, e *env, c tokenCall) string {
			if r := e.revoke(t, c.str("access_token")); r.status != http.StatusOK {
				t.Fatalf("revoke: %d", r.status)
			}
			return c.str("access_token")
		}, 401, "invalid_token"},
		{"without openid scope", func(t *testing.T, e *env, _ tokenCall) string {
			return e.mustTokens(t, "demo.read", "demo").str("access_token")
		}, 403, "insufficient_scope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			call := e.mustTokens(t, "openid offline_access", "demo")
			ui := e.userinfo(t, tc.token(t, e, call))
			if ui.status != tc.wantStatus {
				t.Fatalf("status %d body %v, want %d", ui.status, ui.body, tc.wantStatus)
			}
			if tc.wantStatus == http.StatusOK {
				return
			}
			challenge := ui.header.Get("WWW-Authenticate")
			if !strings.HasPrefix(challenge, "Bearer ") {
				t.Errorf("WWW-Authenticate = %q", challenge)
			}
			if tc.wantError == "" && strings.Contains(challenge, "error=") {
				t.Errorf("error code in a challenge to a request without credentials: %q", challenge)
			}
			if tc.wantError != "" && !strings.Contains(challenge, `error="`+tc.wantError+`"`) {
				t.Errorf("WWW-Authenticate = %q, want error %s", challenge, tc.wantError)
			}
			if ui.body["sub"] != nil {
				t.Error("claims returned for a refused token")
			}
		})
	}
}

func TestUserinfoExpiryUsesInjectedClock(t *testing.T) {
	e := newEnv(t, nil)
	at := e.mustTokens(t, "openid", "demo").str("access_token")
	e.clock.Advance(DefaultAccessTokenTTL - time.Second)
	if ui := e.userinfo(t, at); ui.status != http.StatusOK {
		t.Fatalf("one second before expiry: %d", ui.status)
	}
	e.clock.Advance(time.Second)
	if ui := e.userinfo(t, at); ui.status != http.StatusUnauthorized {
		t.Fatalf("at expiry: %d", ui.status)
	}
}

func TestUserinfoMalformedAuthorization(t *testing.T) {
	e := newEnv(t, nil)
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Basic Zm9vOmJhcg==")
	resp, err := e.raw.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_request"`) {
		t.Errorf("status %d WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// TestAccessTokenSurvivesRestart restarts the provider with the same key:
// the in-memory state is gone, the self-contained access token is not.
func TestAccessTokenSurvivesRestart(t *testing.T) {
	e := newEnv(t, nil)
	call := e.mustTokens(t, "openid offline_access", "demo")
	restarted, err := New(e.opts)
	if err != nil {
		t.Fatal(err)
	}
	e.mount(restarted)
	if ui := e.userinfo(t, call.str("access_token")); ui.status != http.StatusOK {
		t.Errorf("access token after restart: %d %v", ui.status, ui.body)
	}
	if r := e.refresh(t, call.str("refresh_token")); r.str("error") != "invalid_grant" {
		t.Errorf("refresh token survived a restart: %d %v", r.status, r.body)
	}

	o := e.opts
	o.SigningKey = nil
	rekeyed, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.mount(rekeyed)
	if ui := e.userinfo(t, call.str("access_token")); ui.status != http.StatusUnauthorized {
		t.Errorf("access token accepted under a new key: %d", ui.status)
	}
}
