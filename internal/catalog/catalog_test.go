package catalog

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func mustLoad(t testing.TB) *Catalog {
	t.Helper()
	c, err := Load()
	if err != nil {
		t.Fatalf("the embedded catalog is invalid: %v", err)
	}
	return c
}

// TestLoad is the guard on catalog.json: every entry must pass every rule,
// including expanding into a valid profile with its example parameters.
func TestLoad(t *testing.T) {
	c := mustLoad(t)
	names := c.Names()
	if len(names) < 30 {
		t.Fatalf("catalog has %d templates, want at least 30", len(names))
	}
	// The providers the issue promises, by the name an operator would type.
	for _, want := range []string{"google", "microsoft", "microsoft-tenant", "github", "gitlab", "gitlab-self-managed",
		"slack", "slack-user", "atlassian", "notion", "salesforce", "salesforce-sandbox", "hubspot", "dropbox", "box",
		"zoom", "linear", "asana", "discord", "x", "twitter", "spotify", "okta", "auth0", "keycloak", "figma",
		"airtable", "intercom", "shopify", "quickbooks", "xero", "strava", "twitch", "linkedin", "pipedrive"} {
		if _, ok := c.Get(want); !ok {
			t.Errorf("no template for %q", want)
		}
	}
}

func TestGet(t *testing.T) {
	c := mustLoad(t)
	tests := []struct{ in, want string }{
		{"slack", "slack"},
		{"  Slack ", "slack"},
		{"TWITTER", "x"},
		{"entra", "microsoft"},
		{"intuit", "quickbooks"},
	}
	for _, tt := range tests {
		got, ok := c.Get(tt.in)
		if !ok || got.Name != tt.want {
			t.Errorf("Get(%q) = %q, %v; want %q", tt.in, got.Name, ok, tt.want)
		}
	}
	if _, ok := c.Get("slak"); ok {
		t.Error("Get found a misspelt name")
	}
}

func TestGetReturnsACopy(t *testing.T) {
	c := mustLoad(t)
	a, _ := c.Get("atlassian")
	quirks := len(a.Quirks)
	a.AuthParams["audience"] = "evil"
	a.Scopes[0] = "evil"
	a.Quirks = append(a.Quirks, "evil")
	b, _ := c.Get("atlassian")
	if b.AuthParams["audience"] != "api.atlassian.com" || b.Scopes[0] == "evil" || len(b.Quirks) != quirks {
		t.Fatalf("changing a returned template changed the catalog: %+v", b)
	}
}

// validTemplate is a small template that passes every rule; each invalid
// case below breaks one.
func validTemplate() Template {
	return Template{
		Name: "acme", DisplayName: "Acme", DocsURL: "https://docs.acme.test/oauth",
		AppRegistration: "Acme console", Source: "docs.acme.test", Offline: "always",
		AuthURL: "https://{domain}/authorize", TokenURL: "https://{domain}/token",
		Scopes: []string{"read"}, ScopeSeparator: " ", PKCE: PKCESupported,
		TokenEndpointAuthMethod: "client_secret_basic", Refresh: RefreshRotating,
		Placeholders: []Placeholder{{Name: "domain", Kind: kindHostname, Description: "Acme domain", Example: "x.acme.test"}},
	}
}

func catalogJSONOf(t *testing.T, ts ...Template) []byte {
	t.Helper()
	b, err := json.Marshal(catalogFile{Templates: ts})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInvalidEntriesAreRefused(t *testing.T) {
	if _, err := parse(catalogJSONOf(t, validTemplate())); err != nil {
		t.Fatalf("the valid template is refused: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Template)
		want   string
	}{
		{"bad name", func(t *Template) { t.Name = "Acme Inc" }, "name must be"},
		{"missing source", func(t *Template) { t.Source = " " }, "source is required"},
		{"docs over http", func(t *Template) { t.DocsURL = "http://docs.acme.test" }, "docs_url must be an https URL"},
		{"no endpoints", func(t *Template) { t.AuthURL = "" }, "auth_url and token_url are required"},
		{"discovery without issuer", func(t *Template) { t.EnableDiscovery = true }, "enable_discovery needs issuer"},
		{"unknown quirk", func(t *Template) { t.Quirks = []string{"teleport"} }, `unknown quirk "teleport"`},
		{"comma separator without the quirk", func(t *Template) { t.ScopeSeparator = "," }, "does not match what the quirks produce"},
		{"comma quirk with a space separator", func(t *Template) { t.Quirks = []string{"comma_scopes"} }, "does not match what the quirks produce"},
		{"callback param without its quirk", func(t *Template) { t.CallbackParams = []string{"realmId"} }, "callback_params"},
		{"quirk without its callback param", func(t *Template) { t.Quirks = []string{"callback_shop"} }, "callback_params"},
		{"bad pkce", func(t *Template) { t.PKCE = "maybe" }, "pkce must be"},
		{"bad refresh", func(t *Template) { t.Refresh = "sometimes" }, "refresh must be"},
		{"non-expiring with a lifetime", func(t *Template) { t.Refresh = RefreshNonExpiring; t.TokenLifetimeSeconds = 3600 },
			"non_expiring provider must not set token_lifetime_seconds"},
		{"auth method none", func(t *Template) { t.TokenEndpointAuthMethod = "none" }, "token_endpoint_auth_method must be"},
		{"undeclared placeholder", func(t *Template) { t.TokenURL = "https://{host}/token" }, "undeclared placeholder {host}"},
		{"unused placeholder", func(t *Template) {
			t.Placeholders = append(t.Placeholders, Placeholder{Name: "realm", Kind: kindPathSegment, Description: "r", Example: "a"})
		}, `placeholder "realm" is never used`},
		{"placeholder in a query", func(t *Template) {
			t.AuthURL = "https://{domain}/authorize?tenant={domain}"
		}, "placeholders may not appear in a query"},
		{"base_url not first", func(t *Template) {
			t.Placeholders = []Placeholder{{Name: "base", Kind: kindBaseURL, Description: "b", Example: "https://a.test"}}
			t.AuthURL, t.TokenURL = "https://acme.test/{base}", "{base}/token"
		}, "base_url placeholder may only start a URL"},
		{"plain http URL", func(t *Template) { t.TokenURL = "http://{domain}/token" }, "must start with https://"},
		{"example of the wrong kind", func(t *Template) { t.Placeholders[0].Example = "https://x.acme.test" }, "example: must be a DNS host name"},
		{"unknown kind", func(t *Template) { t.Placeholders[0].Kind = "anything" }, "unknown kind"},
		{"reserved auth param", func(t *Template) { t.AuthParams = map[string]string{"redirect_uri": "https://evil.test"} },
			`may not set "redirect_uri"`},
		{"placeholder in auth params", func(t *Template) { t.AuthParams = map[string]string{"tenant": "{domain}"} },
			"auth_params may not hold placeholders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := validTemplate()
			tt.change(&tmpl)
			c, err := parse(catalogJSONOf(t, tmpl))
			if !errors.Is(err, ErrInvalidCatalog) || c != nil {
				t.Fatalf("parse = %v, %v; want ErrInvalidCatalog", c, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestInvalidCatalogFiles(t *testing.T) {
	dup := validTemplate()
	aliased := validTemplate()
	aliased.Name, aliased.Aliases = "acme2", []string{"acme"}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"unknown field", []byte(`{"templates":[{"name":"acme","colour":"red"}]}`), "unknown field"},
		{"not json", []byte(`templates: []`), "invalid catalog"},
		{"empty", []byte(`{"templates":[]}`), "no templates"},
		{"duplicate name", catalogJSONOf(t, dup, validTemplate()), `"acme" used twice`},
		{"alias taking a name", catalogJSONOf(t, dup, aliased), `"acme" used twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(tt.data)
			if !errors.Is(err, ErrInvalidCatalog) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parse error = %v, want ErrInvalidCatalog mentioning %q", err, tt.want)
			}
		})
	}
}
