package demoprovider

import (
	"net/http"
	"net/url"
	"testing"
)

func TestRevokeRefreshTokenRevokesFamily(t *testing.T) {
	for _, hint := range []string{"", "refresh_token", "access_token", "bogus"} {
		t.Run("hint="+hint, func(t *testing.T) {
			e := newEnv(t, nil)
			call := e.mustTokens(t, "openid offline_access", "demo")
			form := url.Values{"token": {call.str("refresh_token")}}
			if hint != "" {
				form.Set("token_type_hint", hint)
			}
			if r := e.post(t, "/revoke", form, authPost, testClientSecret); r.status != http.StatusOK || r.body != nil {
				t.Fatalf("revoke: %d %v", r.status, r.body)
			}
			if r := e.refresh(t, call.str("refresh_token")); r.str("error") != "invalid_grant" {
				t.Errorf("revoked refresh token still works: %d %v", r.status, r.body)
			}
			if ui := e.userinfo(t, call.str("access_token")); ui.status != http.StatusUnauthorized {
				t.Errorf("access token of a revoked grant still works: %d", ui.status)
			}
			if s := e.p.Stats(); s.Revocations != 1 || s.RefreshReuses != 0 {
				t.Errorf("stats = %+v", s)
			}
		})
	}
}

func TestRevokeAccessTokenKeepsRefreshToken(t *testing.T) {
	e := newEnv(t, nil)
	call := e.mustTokens(t, "openid offline_access", "demo")
	if r := e.revoke(t, call.str("access_token")); r.status != http.StatusOK {
		t.Fatalf("revoke: %d %v", r.status, r.body)
	}
	if ui := e.userinfo(t, call.str("access_token")); ui.status != http.StatusUnauthorized {
		t.Errorf("revoked access token still works: %d", ui.status)
	}
	next := e.refresh(t, call.str("refresh_token"))
	if next.status != http.StatusOK {
		t.Fatalf("refresh after access token revocation: %v", next.body)
	}
	if ui := e.userinfo(t, next.str("access_token")); ui.status != http.StatusOK {
		t.Errorf("fresh access token refused: %d", ui.status)
	}
}

func TestRevokeAnswers(t *testing.T) {
	tests := []struct {
		name       string
		form       url.Values
		style      authStyle
		secret     string
		wantStatus int
		wantError  string
	}{
		{"unknown token", url.Values{"token": {"nothing-like-it"}}, authBasic, testClientSecret, 200, ""},
		{"missing token", url.Values{}, authBasic, testClientSecret, 400, "invalid_request"},
		{"wrong secret", url.Values{"token": {"x"}}, authBasic, "wrong", 401, "invalid_client"},
		{"no client auth", url.Values{"token": {"x"}}, authNone, "", 401, "invalid_client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			r := e.post(t, "/revoke", tc.form, tc.style, tc.secret)
			if r.status != tc.wantStatus || r.str("error") != tc.wantError {
				t.Errorf("got %d %v, want %d %q", r.status, r.body, tc.wantStatus, tc.wantError)
			}
			if e.p.Stats().Revocations != 0 {
				t.Error("something was revoked")
			}
		})
	}
}

// TestRevokeRequiresClientAuth shows a caller without the secret cannot
// kill a user's grant.
func TestRevokeRequiresClientAuth(t *testing.T) {
	e := newEnv(t, nil)
	call := e.mustTokens(t, "openid offline_access", "demo")
	r := e.post(t, "/revoke", url.Values{"token": {call.str("refresh_token")}}, authBasic, "wrong")
	if r.status != http.StatusUnauthorized {
		t.Fatalf("status %d", r.status)
	}
	if next := e.refresh(t, call.str("refresh_token")); next.status != http.StatusOK {
		t.Errorf("refresh token lost to an unauthenticated revocation: %v", next.body)
	}
}
