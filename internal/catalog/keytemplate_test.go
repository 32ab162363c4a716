package catalog

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/credential"
	"github.com/dromos-dev/dromos/internal/provider"
)

// keyExpectations is how each key-based template sends its credential and
// where it checks it.
var keyExpectations = map[string]struct {
	mode, header, prefix, verifyHost string
}{
	"openai":         {provider.ModeAPIKey, "Authorization", "Bearer ", "api.openai.com"},
	"anthropic":      {provider.ModeAPIKey, "X-Api-Key", "", "api.anthropic.com"},
	"mistral":        {provider.ModeAPIKey, "Authorization", "Bearer ", "api.mistral.ai"},
	"stripe":         {provider.ModeAPIKey, "Authorization", "Bearer ", "api.stripe.com"},
	"sendgrid":       {provider.ModeAPIKey, "Authorization", "Bearer ", "api.sendgrid.com"},
	"twilio":         {provider.ModeBasic, "Authorization", "", "api.twilio.com"},
	"airtable-token": {provider.ModeAPIKey, "Authorization", "Bearer ", "api.airtable.com"},
	"github-token":   {provider.ModeAPIKey, "Authorization", "Bearer ", "api.github.com"},
	"notion-token":   {provider.ModeAPIKey, "Authorization", "Bearer ", "api.notion.com"},
}

func TestKeyTemplates(t *testing.T) {
	c := mustLoad(t)
	var found int
	for _, name := range c.Names() {
		tmpl, _ := c.Get(name)
		want, ok := keyExpectations[name]
		if tmpl.Credential == nil {
			if ok {
				t.Errorf("%s is expected to be key-based", name)
			}
			continue
		}
		found++
		if !ok {
			t.Errorf("key-based template %s has no expectation here", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			p, err := c.Expand(provider.Profile{Template: name})
			if err != nil {
				t.Fatal(err)
			}
			if p.AuthMode != want.mode || p.ClientID != "" || p.TokenURL != "" {
				t.Fatalf("expanded to mode %q with OAuth fields %q %q", p.AuthMode, p.ClientID, p.TokenURL)
			}
			h := http.Header{}
			in := map[string]string{"api_key": "k-1"}
			if want.mode == provider.ModeBasic {
				in = map[string]string{"username": "u", "password": "p"}
			}
			got, err := credential.Parse(p.CredentialType(), p.CredentialSpec(), in)
			if err != nil {
				t.Fatal(err)
			}
			got.Apply(h)
			wantValue := want.prefix + "k-1"
			if want.mode == provider.ModeBasic {
				wantValue = "Basic dTpw"
			}
			if h.Get(want.header) != wantValue || len(h) != 1 {
				t.Fatalf("injects %v, want %s: %s", h, want.header, wantValue)
			}
			v := p.CredentialSpec().Verify
			if v == nil || !strings.HasPrefix(v.URL, "https://"+want.verifyHost+"/") || v.Method != http.MethodGet {
				t.Fatalf("verification request %+v", v)
			}
			// A profile may override the template's credential spec.
			own := &credential.Spec{Injection: credential.Injection{Header: "X-Other"}}
			if want.mode == provider.ModeAPIKey {
				q, err := c.Expand(provider.Profile{Template: name, Credential: own})
				if err != nil || q.CredentialSpec().Injection.Header != "X-Other" || q.CredentialSpec().Verify != nil {
					t.Fatalf("override: %+v %v", q.Credential, err)
				}
			}
		})
	}
	if found < 8 {
		t.Fatalf("%d key-based templates, want at least 8", found)
	}
}

// TestDeviceEndpointsOnlyForDeviceMode: the templates of providers with a
// device flow carry its endpoint, but only a profile asking for
// oauth2_device_code gets it (a code-flow profile would be refused).
func TestDeviceEndpointsOnlyForDeviceMode(t *testing.T) {
	c := mustLoad(t)
	for name, host := range map[string]string{"github": "github.com", "google": "oauth2.googleapis.com", "microsoft": "login.microsoftonline.com"} {
		code, err := c.Expand(provider.Profile{Template: name, ClientID: "c", ClientSecret: "s"})
		if err != nil || code.DeviceAuthorizationURL != "" {
			t.Fatalf("%s code flow: device URL %q, %v", name, code.DeviceAuthorizationURL, err)
		}
		dev, err := c.Expand(provider.Profile{Template: name, AuthMode: provider.ModeDeviceCode, ClientID: "c", ClientSecret: "s"})
		if err != nil || !strings.HasPrefix(dev.DeviceAuthorizationURL, "https://"+host+"/") {
			t.Fatalf("%s device flow: %q, %v", name, dev.DeviceAuthorizationURL, err)
		}
	}
}
