package provider

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/exchange"
)

func validProfile() Profile {
	return Profile{
		Name:         " Acme ",
		Aliases:      []string{"ACME", "acme-corp", "acme-corp"},
		AuthURL:      "https://id.acme.test/authorize?tenant=x",
		TokenURL:     "https://id.acme.test/token",
		ClientID:     "cid",
		ClientSecret: "s3cret",
		Scopes:       []string{"read", "read", " write "},
	}
}

func TestNormalize(t *testing.T) {
	p := validProfile()
	p.Normalize()
	if p.Name != "acme" || len(p.Aliases) != 1 || p.Aliases[0] != "acme-corp" {
		t.Fatalf("names not normalised: %q %v", p.Name, p.Aliases)
	}
	if len(p.Scopes) != 2 || p.Scopes[1] != "write" {
		t.Fatalf("scopes not deduped: %v", p.Scopes)
	}
	if p.TokenEndpointAuthMethod != AuthAuto || p.DisplayName != "acme" {
		t.Fatalf("defaults not filled: %+v", p)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestGoogleQuirkSwitchedOnByIssuer(t *testing.T) {
	for _, p := range []Profile{
		{Name: "g", Issuer: "https://accounts.google.com", EnableDiscovery: true},
		{Name: "g", AuthURL: "https://accounts.google.com/o/oauth2/v2/auth"},
	} {
		p.Normalize()
		if len(p.Quirks) != 1 || p.Quirks[0] != QuirkGoogleOffline {
			t.Fatalf("google quirk missing for %+v", p)
		}
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	p := Profile{
		Name:                    "Bad Name!",
		AuthURL:                 "ftp://x",
		TokenEndpointAuthMethod: "magic",
		AuthParams:              map[string]string{"redirect_uri": "https://evil.test"},
		Quirks:                  []string{"nope"},
		Aliases:                 []string{"ok", "not ok"},
		UserinfoURL:             "https://user:pw@x.test/u",
	}
	err := p.Validate()
	ve, ok := err.(*ValidationError)
	if !ok {
		t.Fatalf("got %v", err)
	}
	want := []string{"name must", "alias \"not ok\"", "client_id is required", "auth_url and token_url are required",
		"auth_url must be an http(s) URL", "token_endpoint_auth_method", "client_secret is required",
		"may not set \"redirect_uri\"", "unknown quirk", "userinfo_url must not contain credentials"}
	msg := ve.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing problem %q in %q", w, msg)
		}
	}
}

func TestDiscoveryProfileNeedsNoStaticEndpoints(t *testing.T) {
	p := Profile{Name: "okta", Issuer: "https://acme.okta.test", EnableDiscovery: true, ClientID: "c", ClientSecret: "s"}
	p.Normalize()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	p.Issuer = ""
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "enable_discovery needs issuer") {
		t.Fatalf("got %v", err)
	}
}

func TestStoredConfigNeverHoldsSecret(t *testing.T) {
	p := validProfile()
	b, err := p.StoredConfig()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "s3cret") || strings.Contains(string(b), "client_secret") {
		t.Fatalf("secret in stored config: %s", b)
	}
	back, err := FromStoredConfig(b)
	if err != nil || back.ClientID != "cid" || back.TokenURL != p.TokenURL {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	// Even a plain json.Marshal of a profile must not reveal the secret.
	raw, _ := json.Marshal(p)
	if strings.Contains(string(raw), "s3cret") {
		t.Fatalf("json.Marshal leaked the secret: %s", raw)
	}
}

func TestAuthorizationURL(t *testing.T) {
	cases := []struct {
		name    string
		profile Profile
		scopes  []string
		want    map[string]string
		absent  []string
	}{
		{
			name:    "plain with openid",
			profile: Profile{Name: "p", AuthParams: map[string]string{"audience": "api"}},
			scopes:  []string{"openid", "email"},
			want: map[string]string{"scope": "openid email", "audience": "api", "tenant": "x", "nonce": "n1",
				"response_type": "code", "code_challenge_method": "S256", "code_challenge": "cc", "state": "st",
				"client_id": "cid", "redirect_uri": "https://broker.test/auth/callback"},
		},
		{
			name:    "google drops offline_access and asks for offline",
			profile: Profile{Name: "google", Quirks: []string{QuirkGoogleOffline}},
			scopes:  []string{"openid", "offline_access", "email"},
			want:    map[string]string{"scope": "openid email", "access_type": "offline", "prompt": "consent"},
		},
		{
			name: "google keeps the operator's prompt values beside consent",
			profile: Profile{Name: "google", Quirks: []string{QuirkGoogleOffline},
				AuthParams: map[string]string{"prompt": "select_account"}},
			scopes: []string{"openid"},
			want:   map[string]string{"scope": "openid", "access_type": "offline", "prompt": "select_account consent"},
		},
		{
			name:    "comma separated scopes",
			profile: Profile{Name: "slack", Quirks: []string{QuirkCommaScopes}},
			scopes:  []string{"chat:write", "channels:read"},
			want:    map[string]string{"scope": "chat:write,channels:read"},
		},
		{
			name:    "protocol parameters win over auth_params",
			profile: Profile{Name: "p", AuthParams: map[string]string{"prompt": "login"}},
			scopes:  nil,
			want:    map[string]string{"prompt": "login"},
			absent:  []string{"scope"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nonce := ""
			if tc.name == "plain with openid" {
				nonce = "n1"
			}
			raw, err := tc.profile.AuthorizationURL("https://id.test/authorize?tenant=x", AuthRequest{
				ClientID: "cid", RedirectURI: "https://broker.test/auth/callback", Scopes: tc.scopes,
				State: "st", Nonce: nonce, CodeChallenge: "cc",
			})
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(raw)
			q := u.Query()
			for k, v := range tc.want {
				if q.Get(k) != v {
					t.Errorf("%s = %q, want %q (url %s)", k, q.Get(k), v, raw)
				}
			}
			for _, k := range tc.absent {
				if q.Has(k) {
					t.Errorf("%s should be absent in %s", k, raw)
				}
			}
			if u.Host != "id.test" || u.Path != "/authorize" {
				t.Errorf("endpoint changed: %s", raw)
			}
		})
	}
}

func TestTokenRequestHeaders(t *testing.T) {
	cases := []struct {
		headers map[string]string
		problem string // "" = valid
	}{
		{map[string]string{"Notion-Version": "2025-09-03"}, ""},
		{map[string]string{"X-Api-Version": "2"}, ""},
		{map[string]string{"authorization": "Bearer x"}, "may not set Authorization"},
		{map[string]string{"Content-Type": "text/plain"}, "may not set Content-Type"},
		{map[string]string{"Accept": "*/*"}, "may not set Accept"},
		{map[string]string{"Host": "evil.test"}, "may not set Host"},
		{map[string]string{"Bad Name": "x"}, "not a valid header name"},
		{map[string]string{"X-Split": "a\r\nX-Injected: 1"}, "the value of X-Split"},
		{map[string]string{"X-Empty": ""}, "the value of X-Empty"},
		{map[string]string{"X-Long": strings.Repeat("v", 257)}, "the value of X-Long"},
		{map[string]string{"A": "1", "B": "1", "C": "1", "D": "1", "E": "1", "F": "1", "G": "1", "H": "1", "I": "1"}, "at most 8"},
		{map[string]string{"x-trace": "1", "X-Trace": "2"}, "names X-Trace twice"},
	}
	for _, c := range cases {
		p := validProfile()
		p.TokenRequestHeaders = c.headers
		p.Normalize()
		err := p.Validate()
		switch {
		case c.problem == "" && err != nil:
			t.Errorf("%v: %v", c.headers, err)
		case c.problem != "" && (err == nil || !strings.Contains(err.Error(), c.problem)):
			t.Errorf("%v: got %v, want a problem containing %q", c.headers, err, c.problem)
		}
	}

	// The headers reach every endpoint the broker builds for the profile,
	// as a copy.
	p := validProfile()
	p.TokenRequestHeaders = map[string]string{"Notion-Version": "2025-09-03"}
	var ep exchange.Endpoint
	p.ConfigureEndpoint(&ep)
	if ep.ExtraHeaders["Notion-Version"] != "2025-09-03" {
		t.Fatalf("ExtraHeaders = %v", ep.ExtraHeaders)
	}
	ep.ExtraHeaders["Notion-Version"] = "changed"
	if p.TokenRequestHeaders["Notion-Version"] != "2025-09-03" {
		t.Fatal("the endpoint shares the profile's map")
	}
}
