package demoprovider

import (
	"net/http"
	"net/url"
	"testing"
)

func TestRefreshRotatesAndDetectsReuse(t *testing.T) {
	e := newEnv(t, nil)
	first := e.mustTokens(t, "openid email offline_access", "bob")
	rt1 := first.str("refresh_token")

	second := e.refresh(t, rt1)
	if second.status != http.StatusOK {
		t.Fatalf("refresh: %d %v", second.status, second.body)
	}
	rt2 := second.str("refresh_token")
	if rt2 == "" || rt2 == rt1 {
		t.Fatalf("refresh token not rotated: %q", rt2)
	}
	if second.str("access_token") == first.str("access_token") || second.str("scope") != "openid email offline_access" {
		t.Errorf("second response = %v", second.body)
	}
	_, idc := decodeAccessToken(t, second.str("access_token"))
	if idc["sub"] != Subject("bob") {
		t.Errorf("refreshed access token sub = %v", idc["sub"])
	}
	if second.str("id_token") == "" {
		t.Error("no ID token on refresh although openid was granted")
	}
	if second.header.Get("Cache-Control") != "no-store" {
		t.Error("refresh response is cacheable")
	}

	third := e.refresh(t, rt2)
	if third.status != http.StatusOK {
		t.Fatalf("second refresh: %d %v", third.status, third.body)
	}
	rt3 := third.str("refresh_token")

	// The attack: someone replays rt1, which leaked.
	replay := e.refresh(t, rt1)
	if replay.status != http.StatusBadRequest || replay.str("error") != "invalid_grant" || replay.str("access_token") != "" {
		t.Fatalf("replayed refresh token: %d %v", replay.status, replay.body)
	}
	// The whole family is gone, including the newest token and every
	// access token it produced.
	if r := e.refresh(t, rt3); r.str("error") != "invalid_grant" {
		t.Errorf("newest refresh token survived reuse detection: %d %v", r.status, r.body)
	}
	for i, at := range []string{first.str("access_token"), second.str("access_token"), third.str("access_token")} {
		if ui := e.userinfo(t, at); ui.status != http.StatusUnauthorized {
			t.Errorf("access token %d still accepted: %d", i, ui.status)
		}
	}
	if s := e.p.Stats(); s.Refreshes != 2 || s.RefreshReuses != 1 || s.RefreshTokenRequests != 4 {
		t.Errorf("stats = %+v", s)
	}
}

func TestRefreshScope(t *testing.T) {
	tests := []struct {
		name      string
		scope     string
		wantError string
		wantScope string
	}{
		{"narrower", "demo.read", "", "demo.read"},
		{"same", "openid offline_access demo.read", "", "openid offline_access demo.read"},
		{"wider", "openid demo.write", "invalid_scope", ""},
		{"unknown", "admin", "invalid_scope", ""},
		{"empty", "", "invalid_scope", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			rt := e.mustTokens(t, "openid offline_access demo.read", "demo").str("refresh_token")
			call := e.post(t, "/token", url.Values{
				"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {tc.scope},
			}, authPost, testClientSecret)
			if tc.wantError != "" {
				if call.str("error") != tc.wantError {
					t.Fatalf("got %d %v, want %s", call.status, call.body, tc.wantError)
				}
				// A refused request must not rotate the token.
				if again := e.refresh(t, rt); again.status != http.StatusOK {
					t.Errorf("refresh token unusable after a refused scope: %v", again.body)
				}
				return
			}
			if call.status != http.StatusOK || call.str("scope") != tc.wantScope {
				t.Fatalf("got %d %v, want scope %q", call.status, call.body, tc.wantScope)
			}
			if _, at := decodeAccessToken(t, call.str("access_token")); at["scope"] != tc.wantScope {
				t.Errorf("access token scope = %v", at["scope"])
			}
			// Narrowing one response does not shrink the grant.
			if next := e.refresh(t, call.str("refresh_token")); next.str("scope") != "openid offline_access demo.read" {
				t.Errorf("next refresh scope = %q", next.str("scope"))
			}
		})
	}
}

func TestRefreshTokenExpires(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RefreshTokenTTL = 2 * DefaultAccessTokenTTL })
	call := e.mustTokens(t, "offline_access", "demo")
	if call.str("id_token") != "" {
		t.Error("ID token without openid")
	}
	e.clock.Advance(2*DefaultAccessTokenTTL - 1)
	next := e.refresh(t, call.str("refresh_token"))
	if next.status != http.StatusOK {
		t.Fatalf("refresh just before expiry: %v", next.body)
	}
	// Each rotation restarts the clock for the new token.
	e.clock.Advance(2 * DefaultAccessTokenTTL)
	if late := e.refresh(t, next.str("refresh_token")); late.str("error") != "invalid_grant" {
		t.Errorf("expired refresh token accepted: %d %v", late.status, late.body)
	}
}
