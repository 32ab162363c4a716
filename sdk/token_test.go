package sdk

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDecodeToken(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		body    string
		want    *Token
		wantErr string
	}{
		{"gateway answer", `{"access_token":"a","token_type":"Bearer","expires_in":3599,"expires_at":"2026-01-01T01:00:00Z","scope":"openid email","id_token":"i","provider":"google"}`,
			&Token{AccessToken: "a", TokenType: "Bearer", ExpiresIn: 3599, ExpiresAt: now.Add(time.Hour), Scope: "openid email", IDToken: "i", Provider: "google"}, ""},
		{"no expiry", `{"access_token":"a","token_type":"Bearer","scope":"s","provider":"github"}`,
			&Token{AccessToken: "a", TokenType: "Bearer", Scope: "s", Provider: "github"}, ""},
		{"null expiry as the broker writes it", `{"access_token":"a","token_type":"bearer","expires_in":null,"expires_at":null,"scope":"","provider":"p"}`,
			&Token{AccessToken: "a", TokenType: "bearer", Provider: "p"}, ""},
		{"expires_in alone becomes an instant", `{"access_token":"a","expires_in":60}`,
			&Token{AccessToken: "a", TokenType: "Bearer", ExpiresIn: 60, ExpiresAt: now.Add(time.Minute)}, ""},
		{"expires_in as a string", `{"access_token":"a","expires_in":"120"}`,
			&Token{AccessToken: "a", TokenType: "Bearer", ExpiresIn: 120, ExpiresAt: now.Add(2 * time.Minute)}, ""},
		{"negative expires_in is expired now", `{"access_token":"a","expires_in":-5}`,
			&Token{AccessToken: "a", TokenType: "Bearer"}, ""},
		{"extras kept, named members not duplicated", `{"access_token":"a","ext_expires_in":3599,"team":{"id":"T1"},"provider":"slack"}`,
			&Token{AccessToken: "a", TokenType: "Bearer", Provider: "slack", Extra: map[string]any{"ext_expires_in": 3599.0, "team": map[string]any{"id": "T1"}}}, ""},
		{"missing access token", `{"token_type":"Bearer"}`, nil, "no access_token"},
		{"access token not a string", `{"access_token":42}`, nil, "access_token"},
		{"expires_in garbage", `{"access_token":"a","expires_in":"soon"}`, nil, "expires_in"},
		{"expires_at garbage", `{"access_token":"a","expires_at":"tomorrow"}`, nil, "expires_at"},
		{"not an object", `["a"]`, nil, "not a JSON object"},
		{"null", `null`, nil, "not a JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeToken([]byte(tc.body), now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one about %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %#v\nwant %#v", *got, *tc.want)
			}
		})
	}
}

func TestOAuth2Conversion(t *testing.T) {
	exp := time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)
	tok := &Token{AccessToken: "a", TokenType: "Bearer", ExpiresAt: exp, Scope: "openid", IDToken: "i", Provider: "demo",
		Extra: map[string]any{"team": "T1"}}
	o := tok.OAuth2()
	if o.AccessToken != "a" || o.Type() != "Bearer" || !o.Expiry.Equal(exp) {
		t.Fatalf("oauth2 token %+v", o)
	}
	for k, want := range map[string]any{"id_token": "i", "scope": "openid", "provider": "demo", "team": "T1"} {
		if got := o.Extra(k); got != want {
			t.Errorf("Extra(%q) = %v, want %v", k, got, want)
		}
	}
}

func FuzzDecodeToken(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"a","expires_in":3599,"expires_at":"2026-01-01T01:00:00Z"}`,
		`{"access_token":"a","expires_in":"1e400"}`,
		`{"access_token":"a","expires_in":1e30,"x":[1,{"y":null}]}`,
		`{"access_token":"","id_token":7}`,
		`{}`, `[]`, `"x"`, ``,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := decodeToken(body, now)
		if err != nil {
			return
		}
		if tok.AccessToken == "" || tok.TokenType == "" || tok.ExpiresIn < 0 {
			t.Fatalf("accepted an unusable token: %#v", *tok)
		}
		if !tok.ExpiresAt.IsZero() && tok.ExpiresAt.Year() < 1 {
			t.Fatalf("odd expiry %v", tok.ExpiresAt)
		}
		for k := range tok.Extra {
			if namedMember(k) {
				t.Fatalf("named member %q in Extra", k)
			}
		}
		_ = tok.OAuth2()
	})
}
