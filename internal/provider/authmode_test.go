package provider

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/credential"
)

func TestAuthModeValidation(t *testing.T) {
	oauth := func(edit func(*Profile)) Profile {
		p := Profile{Name: "acme", AuthURL: "https://id.acme.test/authorize", TokenURL: "https://id.acme.test/token",
			ClientID: "cid", ClientSecret: "s3cret"}
		edit(&p)
		return p
	}
	key := func(edit func(*Profile)) Profile {
		p := Profile{Name: "openai", AuthMode: ModeAPIKey, Credential: &credential.Spec{
			Injection: credential.Injection{Header: "authorization", ValuePrefix: "Bearer "},
			Verify:    &credential.Verification{URL: "https://api.openai.test/v1/models"}}}
		edit(&p)
		return p
	}
	cases := []struct {
		name  string
		p     Profile
		wants []string // substrings of the error; none means valid
	}{
		{"code is the default", oauth(func(*Profile) {}), nil},
		{"code named", oauth(func(p *Profile) { p.AuthMode = "OAuth2_Code" }), nil},
		{"unknown mode", oauth(func(p *Profile) { p.AuthMode = "saml" }), []string{"auth_mode must be one of"}},
		{"client credentials needs no auth_url", oauth(func(p *Profile) { p.AuthMode = ModeClientCredentials; p.AuthURL = "" }), nil},
		{"code needs auth_url", oauth(func(p *Profile) { p.AuthURL = "" }), []string{"auth_url and token_url are required"}},
		{"client credentials needs a client secret", oauth(func(p *Profile) { p.AuthMode = ModeClientCredentials; p.ClientSecret = "" }),
			[]string{"client_secret is required"}},
		{"client credentials without client authentication", oauth(func(p *Profile) {
			p.AuthMode, p.TokenEndpointAuthMethod, p.ClientSecret = ModeClientCredentials, AuthNone, ""
		}), []string{"other than none"}},
		{"grant contradicts mode", oauth(func(p *Profile) { p.AuthMode, p.Grant = ModeCode, GrantClientCredentials }),
			[]string{"contradicts auth_mode"}},
		{"device code with endpoint", oauth(func(p *Profile) {
			p.AuthMode, p.AuthURL, p.DeviceAuthorizationURL = ModeDeviceCode, "", "https://id.acme.test/device"
		}), nil},
		{"device code without endpoint", oauth(func(p *Profile) { p.AuthMode = ModeDeviceCode }),
			[]string{"needs device_authorization_url"}},
		{"device endpoint on code mode", oauth(func(p *Profile) { p.DeviceAuthorizationURL = "https://id.acme.test/device" }),
			[]string{"only for auth_mode oauth2_device_code"}},
		{"credential on an OAuth mode", oauth(func(p *Profile) { p.Credential = &credential.Spec{} }),
			[]string{"credential is only for auth_mode api_key or basic"}},
		{"api key", key(func(*Profile) {}), nil},
		{"api key with defaults", key(func(p *Profile) { p.Credential = nil }), nil},
		{"api key in a custom header", key(func(p *Profile) { p.Credential.Injection = credential.Injection{Header: "x-api-key"} }), nil},
		{"api key with OAuth fields", key(func(p *Profile) {
			p.ClientID, p.TokenURL, p.Scopes = "cid", "https://id.acme.test/token", []string{"read"}
		}), []string{"client_id is an OAuth setting", "token_url is an OAuth setting", "scopes is an OAuth setting"}},
		{"api key with PAR and audiences", key(func(p *Profile) { p.UsePAR, p.TrustedAudiences = true, []string{"x"} }),
			[]string{"use_par is an OAuth setting", "trusted_audiences is an OAuth setting"}},
		{"api key in a header the broker owns", key(func(p *Profile) { p.Credential.Injection.Header = "Content-Type" }),
			[]string{"injection.header"}},
		{"prefix with a control character", key(func(p *Profile) { p.Credential.Injection.ValuePrefix = "Bearer\n" }),
			[]string{"value_prefix"}},
		{"verification without URL", key(func(p *Profile) { p.Credential.Verify.URL = "" }), []string{"credential.verify.url"}},
		{"verification to a non-http URL", key(func(p *Profile) { p.Credential.Verify.URL = "file:///etc/passwd" }),
			[]string{"credential.verify.url must be an http(s) URL"}},
		{"verification expecting an error status", key(func(p *Profile) { p.Credential.Verify.ExpectStatus = []int{401} }),
			[]string{"2xx"}},
		{"verification with a bad method", key(func(p *Profile) { p.Credential.Verify.Method = "DELETE" }),
			[]string{"method must be GET, HEAD or POST"}},
		{"verification setting the key header", key(func(p *Profile) {
			p.Credential.Verify.Headers = map[string]string{"authorization": "x"}
		}), []string{"may not set Authorization"}},
		{"verification with a version header", key(func(p *Profile) {
			p.Credential.Verify.Headers = map[string]string{"anthropic-version": "2023-06-01"}
		}), nil},
		{"basic", key(func(p *Profile) { p.Name, p.AuthMode, p.Credential = "twilio", ModeBasic, nil }), nil},
		{"basic with an injection rule", key(func(p *Profile) { p.AuthMode = ModeBasic }), []string{"injection is fixed for basic"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			p.Normalize()
			err := p.Validate()
			if len(tc.wants) == 0 {
				if err != nil {
					t.Fatalf("valid profile refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("invalid profile accepted: %+v", p)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestAuthModeNormalize(t *testing.T) {
	p := Profile{Name: "svc", AuthMode: " OAUTH2_CLIENT_CREDENTIALS ", TokenURL: "https://id.test/token", ClientID: "c", ClientSecret: "s"}
	p.Normalize()
	if p.AuthMode != ModeClientCredentials || p.Grant != GrantClientCredentials || p.Mode() != ModeClientCredentials {
		t.Fatalf("client credentials mode not normalised: mode %q grant %q", p.AuthMode, p.Grant)
	}
	legacy := Profile{Grant: GrantClientCredentials}
	if legacy.Mode() != ModeClientCredentials {
		t.Fatalf("grant client_credentials reads as mode %q", legacy.Mode())
	}
	k := Profile{Name: "openai", AuthMode: ModeAPIKey}
	k.Normalize()
	if k.TokenEndpointAuthMethod != "" || k.Credential == nil || k.Credential.Injection.Header != "Authorization" {
		t.Fatalf("api_key defaults: %+v %+v", k, k.Credential)
	}
	b, err := k.StoredConfig()
	if err != nil {
		t.Fatal(err)
	}
	back, err := FromStoredConfig(b)
	if err != nil || back.AuthMode != ModeAPIKey || back.Credential.Injection.Header != "Authorization" {
		t.Fatalf("stored config round trip: %s → %+v %v", b, back, err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if _, ok := m["token_endpoint_auth_method"]; ok {
		t.Fatalf("api_key profile stored an OAuth default: %s", b)
	}
}
