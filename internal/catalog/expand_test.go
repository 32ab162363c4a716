package catalog

import (
	"errors"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/secret"
)

// expected is what a template's authorization request must look like,
// written down independently of catalog.json.
type expected struct {
	host   string            // host of the authorization endpoint (the issuer's with discovery)
	issuer string            // the expanded issuer, when the template has one
	params map[string]string // parameters the provider needs in every request
}

var authExpectations = map[string]expected{
	"airtable":            {host: "airtable.com"},
	"asana":               {host: "app.asana.com"},
	"atlassian":           {host: "auth.atlassian.com", params: map[string]string{"audience": "api.atlassian.com", "prompt": "consent"}},
	"auth0":               {host: "acme.eu.auth0.com", issuer: "https://acme.eu.auth0.com/"},
	"box":                 {host: "account.box.com"},
	"discord":             {host: "discord.com"},
	"dropbox":             {host: "www.dropbox.com", params: map[string]string{"token_access_type": "offline"}},
	"figma":               {host: "www.figma.com"},
	"github":              {host: "github.com"},
	"gitlab":              {host: "gitlab.com", issuer: "https://gitlab.com"},
	"gitlab-self-managed": {host: "gitlab.example.com", issuer: "https://gitlab.example.com"},
	"google":              {host: "accounts.google.com", issuer: "https://accounts.google.com", params: map[string]string{"access_type": "offline", "prompt": "consent"}},
	"hubspot":             {host: "app.hubspot.com"},
	"intercom":            {host: "app.intercom.io"},
	"keycloak":            {host: "sso.example.com", issuer: "https://sso.example.com/realms/acme"},
	"linear":              {host: "linear.app"},
	"linkedin":            {host: "www.linkedin.com"},
	"microsoft":           {host: "login.microsoftonline.com"},
	"microsoft-tenant":    {host: "login.microsoftonline.com", issuer: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"},
	"notion":              {host: "api.notion.com", params: map[string]string{"owner": "user"}},
	"okta":                {host: "dev-123456.okta.com", issuer: "https://dev-123456.okta.com"},
	"pipedrive":           {host: "oauth.pipedrive.com"},
	"quickbooks":          {host: "appcenter.intuit.com"},
	"salesforce":          {host: "login.salesforce.com", issuer: "https://login.salesforce.com"},
	"salesforce-sandbox":  {host: "test.salesforce.com", issuer: "https://test.salesforce.com"},
	"shopify":             {host: "acme-store.myshopify.com"},
	"slack":               {host: "slack.com"},
	"slack-user":          {host: "slack.com"},
	"spotify":             {host: "accounts.spotify.com"},
	"strava":              {host: "www.strava.com"},
	"twitch":              {host: "id.twitch.tv"},
	"x":                   {host: "x.com"},
	"xero":                {host: "identity.xero.com", issuer: "https://identity.xero.com"},
	"zoom":                {host: "zoom.us"},
}

func exampleParams(t Template) map[string]string {
	params := make(map[string]string)
	for _, ph := range t.Placeholders {
		params[ph.Name] = ph.Example
	}
	return params
}

// TestEveryTemplateAuthorizationURL expands every template with its example
// parameters and builds an authorization URL, checking host, the
// provider's required parameters and how scopes are joined.
func TestEveryTemplateAuthorizationURL(t *testing.T) {
	c := mustLoad(t)
	oauth := slices.DeleteFunc(c.Names(), func(n string) bool { _, key := keyExpectations[n]; return key })
	if got, want := oauth, slices.Sorted(maps.Keys(authExpectations)); !slices.Equal(got, want) {
		t.Fatalf("templates and expectations differ:\n catalog %v\n test    %v", got, want)
	}
	for _, name := range oauth {
		t.Run(name, func(t *testing.T) {
			tmpl, _ := c.Get(name)
			want := authExpectations[name]
			p, err := c.Expand(provider.Profile{Template: name, TemplateParams: exampleParams(tmpl),
				ClientID: "cid", ClientSecret: secret.String("sec")})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Validate(); err != nil {
				t.Fatalf("expanded profile does not validate: %v", err)
			}
			if p.Name != name || p.Template != name || p.DisplayName != tmpl.DisplayName {
				t.Errorf("name %q template %q display %q", p.Name, p.Template, p.DisplayName)
			}
			if want.issuer != "" && p.Issuer != want.issuer {
				t.Errorf("issuer = %q, want %q", p.Issuer, want.issuer)
			}
			endpoint := p.AuthURL
			if endpoint == "" {
				// Discovery finds the real endpoint at registration; any
				// path on the issuer's host stands in for it here.
				endpoint = strings.TrimSuffix(p.Issuer, "/") + "/authorize"
			}
			scopes := append(slices.Clone(tmpl.Scopes), "extra.scope")
			raw, err := p.AuthorizationURL(endpoint, provider.AuthRequest{ClientID: "cid",
				RedirectURI: "https://broker.example.com/auth/callback", Scopes: scopes, State: "st", CodeChallenge: "cc"})
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if u.Scheme != "https" || u.Host != want.host {
				t.Errorf("authorization URL %s, want host %s", raw, want.host)
			}
			q := u.Query()
			for k, v := range want.params {
				if q.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, q.Get(k), v)
				}
			}
			for k, v := range tmpl.AuthParams {
				if q.Get(k) != v {
					t.Errorf("template auth param %s = %q, want %q", k, q.Get(k), v)
				}
			}
			scopeParam := "scope"
			if slices.Contains(tmpl.Quirks, provider.QuirkSlackUserToken) {
				scopeParam = "user_scope"
				if q.Has("scope") {
					t.Errorf("user token request also sends scope: %s", raw)
				}
			}
			requested := slices.DeleteFunc(scopes, func(s string) bool {
				return s == "offline_access" && slices.Contains(tmpl.Quirks, provider.QuirkGoogleOffline)
			})
			if got, want := q.Get(scopeParam), strings.Join(requested, tmpl.ScopeSeparator); got != want {
				t.Errorf("%s = %q, want %q", scopeParam, got, want)
			}
			for _, k := range []string{"client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method"} {
				if q.Get(k) == "" {
					t.Errorf("%s missing from %s", k, raw)
				}
			}
		})
	}
}

func TestExpandFillsAndOverrides(t *testing.T) {
	c := mustLoad(t)
	p, err := c.Expand(provider.Profile{
		Template: "atlassian", Name: "Jira-Prod", ClientID: "cid", ClientSecret: "sec",
		Scopes:     []string{"read:jira-work", "offline_access"},
		AuthParams: map[string]string{"prompt": "login", "extra": "1"},
		TokenURL:   "https://proxy.example.com/token",
		Quirks:     []string{provider.QuirkCommaScopes},
	})
	if err != nil {
		t.Fatal(err)
	}
	tmpl, _ := c.Get("atlassian")
	checks := []struct {
		what      string
		got, want any
	}{
		{"name", p.Name, "jira-prod"},
		{"display name", p.DisplayName, tmpl.DisplayName},
		{"template kept", p.Template, "atlassian"},
		{"explicit token_url wins", p.TokenURL, "https://proxy.example.com/token"},
		{"auth_url from template", p.AuthURL, tmpl.AuthURL},
		{"auth method from template", p.TokenEndpointAuthMethod, tmpl.TokenEndpointAuthMethod},
		{"explicit scopes replace", strings.Join(p.Scopes, " "), "read:jira-work offline_access"},
		{"auth_params merged", p.AuthParams, map[string]string{"audience": "api.atlassian.com", "prompt": "login", "extra": "1"}},
		{"quirks added", strings.Join(p.Quirks, " "), strings.Join(append(slices.Clone(tmpl.Quirks), provider.QuirkCommaScopes), " ")},
	}
	for _, ck := range checks {
		if a, ok := ck.got.(map[string]string); ok {
			if !maps.Equal(a, ck.want.(map[string]string)) {
				t.Errorf("%s: %v, want %v", ck.what, ck.got, ck.want)
			}
			continue
		}
		if ck.got != ck.want {
			t.Errorf("%s: %v, want %v", ck.what, ck.got, ck.want)
		}
	}

	// Template quirks stay when the profile adds its own.
	s, err := c.Expand(provider.Profile{Template: "slack", ClientID: "c", ClientSecret: "s", Quirks: []string{"callback_shop"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(s.Quirks, provider.QuirkCommaScopes) || !slices.Contains(s.Quirks, provider.QuirkTokenTypeAny) ||
		!slices.Contains(s.Quirks, "callback_shop") {
		t.Fatalf("quirks = %v", s.Quirks)
	}

	// An explicit issuer on a discovery template keeps discovery on.
	o, err := c.Expand(provider.Profile{Template: "okta", TemplateParams: map[string]string{"domain": "Dev-1.Okta.com"},
		Issuer: "https://dev-1.okta.com/oauth2/default", ClientID: "c", ClientSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Issuer != "https://dev-1.okta.com/oauth2/default" || !o.EnableDiscovery || o.TemplateParams["domain"] != "dev-1.okta.com" {
		t.Fatalf("okta custom server: %+v", o)
	}
}

func TestExpandWithoutTemplate(t *testing.T) {
	c := mustLoad(t)
	in := provider.Profile{Name: "plain", AuthURL: "https://a.test/auth", TokenURL: "https://a.test/token", ClientID: "c"}
	out, err := c.Expand(in)
	if err != nil || out.Name != in.Name || out.AuthURL != in.AuthURL || out.TokenEndpointAuthMethod != "" {
		t.Fatalf("Expand changed a profile without template: %+v, %v", out, err)
	}
	in.TemplateParams = map[string]string{"domain": "x.test"}
	if _, err := c.Expand(in); !errors.Is(err, ErrTemplateParams) {
		t.Fatalf("template_params without template: %v", err)
	}
}

func TestExpandUnknownTemplate(t *testing.T) {
	c := mustLoad(t)
	tests := []struct {
		name    string
		mention []string
	}{
		{"slak", []string{"slack"}},
		{"twiter", []string{"x"}},
		{"gitlab-selfhosted", []string{"gitlab"}},
		{"zzzzzzzz", []string{"known:", "google", "zoom"}},
	}
	for _, tt := range tests {
		_, err := c.Expand(provider.Profile{Template: tt.name, ClientID: "c", ClientSecret: "s"})
		if !errors.Is(err, ErrUnknownTemplate) {
			t.Fatalf("%s: error = %v", tt.name, err)
		}
		for _, m := range tt.mention {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s: error %q does not mention %q", tt.name, err, m)
			}
		}
	}
}

func TestExpandParamProblems(t *testing.T) {
	c := mustLoad(t)
	tests := []struct {
		name     string
		template string
		params   map[string]string
		want     []string
	}{
		{"all missing listed at once", "keycloak", nil, []string{"base_url is required", "realm is required"}},
		{"blank counts as missing", "okta", map[string]string{"domain": "  "}, []string{"domain is required"}},
		{"unknown parameter", "okta", map[string]string{"domain": "a.okta.com", "tenant": "x"}, []string{`unknown parameter "tenant"`}},
		{"parameter for a template without placeholders", "slack", map[string]string{"team": "T1"}, []string{`unknown parameter "team"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Expand(provider.Profile{Template: tt.template, TemplateParams: tt.params, ClientID: "c", ClientSecret: "s"})
			if !errors.Is(err, ErrTemplateParams) {
				t.Fatalf("error = %v, want ErrTemplateParams", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestExpandReportsValidation(t *testing.T) {
	c := mustLoad(t)
	_, err := c.Expand(provider.Profile{Template: "github", ClientID: "c"}) // no secret
	var ve *provider.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "client_secret is required") {
		t.Fatalf("error = %v, want a ValidationError about the secret", err)
	}
}

// TestPlaceholderInjectionRefused tries to smuggle paths, queries,
// credentials and other hosts through template_params. Each attempt must
// fail without producing a profile, and the error must not echo the value.
func TestPlaceholderInjectionRefused(t *testing.T) {
	c := mustLoad(t)
	tests := []struct {
		template, param, value string
	}{
		{"okta", "domain", "evil.test/x"},
		{"okta", "domain", "dev-1.okta.com/oauth2/evil"},
		{"okta", "domain", "evil.test#dev-1.okta.com"},
		{"okta", "domain", "dev-1.okta.com@evil.test"},
		{"okta", "domain", "evil.test?x=dev-1.okta.com"},
		{"okta", "domain", "evil.test:8443"},
		{"okta", "domain", "https://dev-1.okta.com"},
		{"okta", "domain", "dev-1.okta.com%2fevil"},
		{"okta", "domain", "dev-1.okta.com\\evil.test"},
		{"okta", "domain", "dev 1.okta.com"},
		{"okta", "domain", "dev-1.okta.com\r\nHost: evil.test"},
		{"okta", "domain", "dév.okta.com"},
		{"okta", "domain", "localhost"},
		{"okta", "domain", "127.0.0.1"},
		{"okta", "domain", "dev-1..okta.com"},
		{"auth0", "domain", "acme.auth0.com/"},
		{"shopify", "shop", "evil.test/"},
		{"shopify", "shop", "acme-store.myshopify.com"},
		{"shopify", "shop", "evil.test#"},
		{"shopify", "shop", "evil.test?"},
		{"shopify", "shop", "a@evil"},
		{"shopify", "shop", "-acme"},
		{"shopify", "shop", "acme%2Eevil"},
		{"keycloak", "base_url", "https://sso.example.com/evil"},
		{"keycloak", "base_url", "https://sso.example.com?x=1"},
		{"keycloak", "base_url", "https://user:pw@sso.example.com"},
		{"keycloak", "base_url", "http://sso.example.com"},
		{"keycloak", "base_url", "https://sso.example.com#frag"},
		{"keycloak", "base_url", "https://sso.example.com:99999"},
		{"keycloak", "base_url", "https://sso.example.com:0443"},
		{"keycloak", "base_url", "//evil.test"},
		{"keycloak", "base_url", "https://[::1]"},
		{"keycloak", "realm", "../admin"},
		{"keycloak", "realm", "acme/../../evil"},
		{"keycloak", "realm", "acme?x=1"},
		{"keycloak", "realm", "acme%2F.."},
		{"keycloak", "realm", ".."},
		{"microsoft-tenant", "tenant", "common"},
		{"microsoft-tenant", "tenant", "72f988bf-86f1-41af-91ab-2d7cd011db47/evil"},
		{"microsoft-tenant", "tenant", "contoso.onmicrosoft.com"},
		{"gitlab-self-managed", "base_url", "https://gitlab.example.com/../evil"},
	}
	for _, tt := range tests {
		t.Run(tt.template+"/"+tt.value, func(t *testing.T) {
			tmpl, _ := c.Get(tt.template)
			params := exampleParams(tmpl)
			params[tt.param] = tt.value
			p, err := c.Expand(provider.Profile{Template: tt.template, TemplateParams: params, ClientID: "c", ClientSecret: "s"})
			if !errors.Is(err, ErrTemplateParams) {
				t.Fatalf("Expand = %+v, %v; want ErrTemplateParams", p, err)
			}
			if p.Name != "" || p.Issuer != "" || p.AuthURL != "" {
				t.Fatalf("a profile came back with the error: %+v", p)
			}
			if strings.Contains(err.Error(), tt.value) {
				t.Fatalf("error echoes the value: %v", err)
			}
		})
	}
}

// TestAcceptedPlaceholderValues are the legitimate shapes, in canonical form.
func TestAcceptedPlaceholderValues(t *testing.T) {
	c := mustLoad(t)
	tests := []struct {
		template string
		params   map[string]string
		field    func(provider.Profile) string
		want     string
	}{
		{"okta", map[string]string{"domain": " Dev-1.OKTA.com "}, func(p provider.Profile) string { return p.Issuer }, "https://dev-1.okta.com"},
		{"shopify", map[string]string{"shop": "Acme-Store"}, func(p provider.Profile) string { return p.TokenURL },
			"https://acme-store.myshopify.com/admin/oauth/access_token"},
		{"keycloak", map[string]string{"base_url": "https://SSO.example.com:8443/", "realm": "Acme.Prod_1"},
			func(p provider.Profile) string { return p.Issuer }, "https://sso.example.com:8443/realms/Acme.Prod_1"},
		{"keycloak", map[string]string{"base_url": "https://10.0.0.5", "realm": "a"},
			func(p provider.Profile) string { return p.Issuer }, "https://10.0.0.5/realms/a"},
		{"gitlab-self-managed", map[string]string{"base_url": "https://gitlab"},
			func(p provider.Profile) string { return p.Issuer }, "https://gitlab"},
		{"microsoft-tenant", map[string]string{"tenant": "72F988BF-86F1-41AF-91AB-2D7CD011DB47"},
			func(p provider.Profile) string { return p.Issuer }, "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"},
	}
	for _, tt := range tests {
		p, err := c.Expand(provider.Profile{Template: tt.template, TemplateParams: tt.params, ClientID: "c", ClientSecret: "s"})
		if err != nil {
			t.Errorf("%s %v: %v", tt.template, tt.params, err)
			continue
		}
		if got := tt.field(p); got != tt.want {
			t.Errorf("%s %v: got %q, want %q", tt.template, tt.params, got, tt.want)
		}
	}
}

// TestRenderChecksStructure drives render with values that skipped kind
// validation, to show the second line of defence holds on its own.
func TestRenderChecksStructure(t *testing.T) {
	host := map[string]Placeholder{"domain": {Name: "domain", Kind: kindHostname}}
	base := map[string]Placeholder{"base": {Name: "base", Kind: kindBaseURL}, "realm": {Name: "realm", Kind: kindPathSegment}}
	tests := []struct {
		tmpl     string
		declared map[string]Placeholder
		vals     map[string]string
		ok       bool
	}{
		{"https://{domain}/oauth2/v1/token", host, map[string]string{"domain": "a.example.com"}, true},
		{"https://{domain}/oauth2/v1/token", host, map[string]string{"domain": "evil.test/x"}, false},
		{"https://{domain}/oauth2/v1/token", host, map[string]string{"domain": "a.example.com@evil.test"}, false},
		{"https://{domain}/oauth2/v1/token", host, map[string]string{"domain": "evil.test?"}, false},
		{"https://{domain}/oauth2/v1/token", host, map[string]string{"domain": "evil.test#"}, false},
		{"https://{domain}.myshop.test/admin", host, map[string]string{"domain": "evil.test/"}, false},
		{"{base}/realms/{realm}", base, map[string]string{"base": "https://sso.test", "realm": "a"}, true},
		{"{base}/realms/{realm}", base, map[string]string{"base": "https://sso.test/x", "realm": "a"}, false},
		{"{base}/realms/{realm}", base, map[string]string{"base": "http://sso.test", "realm": "a"}, false},
		{"{base}/realms/{realm}", base, map[string]string{"base": "https://sso.test", "realm": "a?b"}, false},
		{"{base}/realms/{realm}", base, map[string]string{"base": "https://sso.test", "realm": "a%2Fb"}, false},
		{"{base}/realms/{realm}", base, map[string]string{"base": "https://sso.test"}, false},
	}
	for _, tt := range tests {
		out, err := render(tt.tmpl, tt.declared, tt.vals)
		if tt.ok != (err == nil) {
			t.Errorf("render(%q, %v) = %q, %v; ok want %v", tt.tmpl, tt.vals, out, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrTemplateParams) {
			t.Errorf("render error %v does not wrap ErrTemplateParams", err)
		}
	}
}

// FuzzExpand feeds arbitrary template_params to the templates with
// placeholders; whatever is accepted must keep every URL on the host and
// path the template fixes.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"dev-1.okta.com", "evil.test/x", "a@b", "https://sso.test:8443", "acme", "..", "%2f"} {
		f.Add(s, s)
	}
	c := mustLoad(f)
	f.Fuzz(func(t *testing.T, a, b string) {
		check := func(template string, params map[string]string, ok func(provider.Profile) bool) {
			p, err := c.Expand(provider.Profile{Template: template, TemplateParams: params, ClientID: "c", ClientSecret: "s"})
			if err != nil {
				return
			}
			if !ok(p) {
				t.Fatalf("%s with %q accepted: %+v", template, params, p)
			}
		}
		check("okta", map[string]string{"domain": a}, func(p provider.Profile) bool {
			u, err := url.Parse(p.Issuer)
			return err == nil && u.Scheme == "https" && u.Host == strings.ToLower(strings.TrimSpace(a)) && u.Path == "" && u.User == nil
		})
		check("shopify", map[string]string{"shop": a}, func(p provider.Profile) bool {
			u, err := url.Parse(p.AuthURL)
			return err == nil && strings.HasSuffix(u.Host, ".myshopify.com") && strings.Count(u.Host, ".") == 2 &&
				u.Path == "/admin/oauth/authorize" && u.RawQuery == ""
		})
		check("keycloak", map[string]string{"base_url": a, "realm": b}, func(p provider.Profile) bool {
			u, err := url.Parse(p.Issuer)
			return err == nil && u.Scheme == "https" && u.User == nil && u.RawQuery == "" && u.Fragment == "" &&
				u.Path == "/realms/"+strings.TrimSpace(b)
		})
	})
}

func TestExpandMergesTokenRequestHeaders(t *testing.T) {
	c := mustLoad(t)
	p, err := c.Expand(provider.Profile{Template: "notion", ClientID: "cid", ClientSecret: "sec"})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(p.TokenRequestHeaders, map[string]string{"Notion-Version": "2025-09-03"}) {
		t.Fatalf("template headers: %v", p.TokenRequestHeaders)
	}
	p, err = c.Expand(provider.Profile{Template: "notion", ClientID: "cid", ClientSecret: "sec",
		TokenRequestHeaders: map[string]string{"Notion-Version": "2022-06-28", "X-Trace": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(p.TokenRequestHeaders, map[string]string{"Notion-Version": "2022-06-28", "X-Trace": "1"}) {
		t.Fatalf("profile headers must win key by key: %v", p.TokenRequestHeaders)
	}
	tmpl, _ := c.Get("notion")
	if tmpl.TokenRequestHeaders["Notion-Version"] != "2025-09-03" {
		t.Fatal("Expand changed the catalog's template")
	}
	// Names compare without regard to case: the profile's spelling still wins.
	p, err = c.Expand(provider.Profile{Template: "notion", ClientID: "cid", ClientSecret: "sec",
		TokenRequestHeaders: map[string]string{"notion-version": "2022-06-28"}})
	if err != nil || !maps.Equal(p.TokenRequestHeaders, map[string]string{"Notion-Version": "2022-06-28"}) {
		t.Fatalf("lower-case override: %v %v", p.TokenRequestHeaders, err)
	}
	if _, err := c.Expand(provider.Profile{Template: "notion", ClientID: "cid", ClientSecret: "sec",
		TokenRequestHeaders: map[string]string{"x-a": "1", "X-A": "2"}}); err == nil || !strings.Contains(err.Error(), "names X-A twice") {
		t.Fatalf("a header given twice: %v", err)
	}
	if _, err := c.Expand(provider.Profile{Template: "notion", ClientID: "cid", ClientSecret: "sec",
		TokenRequestHeaders: map[string]string{"Authorization": "Bearer x"}}); err == nil {
		t.Fatal("a profile could set Authorization through token_request_headers")
	}
}

func TestExpandAPIAccess(t *testing.T) {
	c := mustLoad(t)
	for _, tc := range []struct {
		name       string
		in         provider.Profile
		wantBases  []string
		wantPD     string
		wantHeader string
		wantConst  map[string]string
	}{
		{"placeholder rendered into the base",
			provider.Profile{Template: "shopify", TemplateParams: map[string]string{"shop": "MyStore"}, ClientID: "c", ClientSecret: "s"},
			[]string{"https://mystore.myshopify.com/admin/api"}, "", "X-Shopify-Access-Token", nil},
		{"constant version header",
			provider.Profile{Template: "notion", ClientID: "c", ClientSecret: "s"},
			[]string{"https://api.notion.com/v1"}, "", "Authorization", map[string]string{"Notion-Version": "2025-09-03"}},
		{"per-connection base from provider data",
			provider.Profile{Template: "salesforce", ClientID: "c", ClientSecret: "s"},
			nil, "instance_url", "Authorization", nil},
		{"the profile's own bases win",
			provider.Profile{Template: "github", ClientID: "c", ClientSecret: "s", APIBaseURLs: []string{"https://ghe.example.com/api/v3"}},
			[]string{"https://ghe.example.com/api/v3"}, "", "Authorization", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := c.Expand(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.APIBaseURLs, tc.wantBases) || p.APIBaseURLProviderData != tc.wantPD {
				t.Fatalf("bases %v / %q, want %v / %q", p.APIBaseURLs, p.APIBaseURLProviderData, tc.wantBases, tc.wantPD)
			}
			if h, _ := p.APIAuth.TokenHeader(); h != tc.wantHeader {
				t.Fatalf("token header %q, want %q", h, tc.wantHeader)
			}
			var got map[string]string
			if p.APIAuth != nil {
				got = p.APIAuth.Headers
			}
			if !maps.Equal(got, tc.wantConst) {
				t.Fatalf("constant headers %v, want %v", got, tc.wantConst)
			}
		})
	}
	// The expanded profile holds a copy: changing it leaves the catalog alone.
	p, _ := c.Expand(provider.Profile{Template: "notion", ClientID: "c", ClientSecret: "s"})
	p.APIAuth.Headers["Notion-Version"] = "changed"
	again, _ := c.Expand(provider.Profile{Template: "notion", ClientID: "c", ClientSecret: "s"})
	if again.APIAuth.Headers["Notion-Version"] != "2025-09-03" {
		t.Fatal("expanding shared the template's header map")
	}
}
