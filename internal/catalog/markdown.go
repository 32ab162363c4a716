package catalog

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dromos-dev/dromos/internal/provider"
)

var refreshDocs = []struct{ value, doc string }{
	{RefreshRotating, "every refresh returns a new refresh token and retires the old one"},
	{RefreshReusable, "the same refresh token keeps working"},
	{RefreshNonExpiring, "access tokens do not expire; there is nothing to refresh"},
	{RefreshNone, "access tokens expire and no refresh token is issued: the user connects again"},
}

// Markdown renders the generated part of docs/PROVIDERS.md, the "Provider
// catalog" section between its BEGIN/END GENERATED CATALOG marker lines:
// how templates work, then one section per provider. Headings start at
// level 2 so the section nests under the hand-written document above it.
// The output depends only on the catalog and the quirk descriptions, so a
// test (TestCatalogDoc) can keep the file in step.
func (c *Catalog) Markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	w("## Provider catalog\n\n")
	w("<!-- Generated from internal/catalog/catalog.json by (*catalog.Catalog).Markdown; do not edit by hand:\n")
	w("     everything down to END GENERATED CATALOG is rewritten by the command in the BEGIN line. -->\n\n")
	w("A template registers a well-known provider in one line:\n\n")
	w("```json\n{\"profile\": {\"template\": \"slack\", \"client_id\": \"…\", \"client_secret\": \"…\"}}\n```\n\n")
	w("Every profile field left empty comes from the template; fields the profile sets win ")
	w("(`auth_params` and `token_request_headers` are merged key by key, `quirks` add up, `enable_discovery` is on if either side turns it on). ")
	w("Templates with placeholders take their values in `template_params`:\n\n")
	w("```json\n{\"profile\": {\"template\": \"okta\", \"template_params\": {\"domain\": \"dev-123456.okta.com\"},\n")
	w("             \"client_id\": \"…\", \"client_secret\": \"…\"}}\n```\n\n")
	w("Each placeholder is required and checked against its kind, so a value can never add a path, a query, ")
	w("`@` or another host to a URL. The stored registration keeps `template` and `template_params`.\n\n")
	w("**Redirect URI.** For every provider, register `BASE_URL` + `REDIRECT_PATH` (default `/auth/callback`) ")
	w("in the provider's console, e.g. `https://broker.example.com/auth/callback`.\n\n")
	w("**Sources.** Each entry says where its facts come from and marks what could not be verified. ")
	w("Providers change their endpoints: when one is out of date, set the field in the profile, and it wins.\n\n")

	w("| template | provider | placeholders | refresh |\n|---|---|---|---|\n")
	for _, t := range c.templates {
		var phs []string
		for _, ph := range t.Placeholders {
			phs = append(phs, "`"+ph.Name+"`")
		}
		if len(phs) == 0 {
			phs = []string{"—"}
		}
		refresh := t.Refresh
		if refresh == "" {
			refresh = "— (`" + t.AuthMode + "`)"
		}
		w("| [`%s`](#%s) | %s | %s | %s |\n", t.Name, t.Name, t.DisplayName, strings.Join(phs, ", "), refresh)
	}

	w("\n### Placeholder kinds\n\n| kind | accepts |\n|---|---|\n")
	kindNames := make([]string, 0, len(kinds))
	for k := range kinds {
		kindNames = append(kindNames, k)
	}
	slices.Sort(kindNames)
	for _, k := range kindNames {
		w("| `%s` | %s |\n", k, kinds[k].doc)
	}
	w("\n### Quirks\n\n| quirk | behaviour |\n|---|---|\n")
	for _, q := range provider.KnownQuirks() {
		w("| `%s` | %s |\n", q, provider.DescribeQuirk(q))
	}
	w("\n### Refresh behaviour\n\n| refresh | meaning |\n|---|---|\n")
	for _, r := range refreshDocs {
		w("| `%s` | %s |\n", r.value, r.doc)
	}

	for _, t := range c.templates {
		w("\n<a id=\"%s\"></a>\n### %s — `%s`\n\n", t.Name, t.DisplayName, t.Name)
		writeTemplate(&b, t)
	}
	return b.String()
}

func writeTemplate(b *strings.Builder, t Template) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	code := func(items []string) string {
		if len(items) == 0 {
			return "none"
		}
		out := make([]string, len(items))
		for i, s := range items {
			out[i] = "`" + s + "`"
		}
		return strings.Join(out, ", ")
	}
	if len(t.Aliases) > 0 {
		w("Also found as %s.\n\n", code(t.Aliases))
	}
	if t.Credential != nil {
		writeKeyTemplate(b, t)
		return
	}
	w("- **Documentation:** %s\n", t.DocsURL)
	w("- **Create the app:** %s\n", t.AppRegistration)
	w("- **Redirect URI to register:** `BASE_URL` + `REDIRECT_PATH`\n")
	var ends []string
	if t.Issuer != "" {
		disc := ""
		if t.EnableDiscovery {
			disc = " (OpenID Connect discovery)"
		}
		ends = append(ends, fmt.Sprintf("issuer `%s`%s", t.Issuer, disc))
	}
	for _, e := range []struct{ name, url string }{
		{"authorization", t.AuthURL}, {"token", t.TokenURL}, {"revocation", t.RevocationURL},
		{"userinfo", t.UserinfoURL}, {"JWKS", t.JWKSURL}, {"device authorization (with `auth_mode` `oauth2_device_code`)", t.DeviceAuthorizationURL},
	} {
		if e.url != "" {
			ends = append(ends, fmt.Sprintf("%s `%s`", e.name, e.url))
		}
	}
	w("- **Endpoints:** %s\n", strings.Join(ends, "; "))
	sep := "spaces"
	if t.ScopeSeparator == "," {
		sep = "commas"
	}
	w("- **Default scopes:** %s (joined with %s)\n", code(t.Scopes), sep)
	w("- **Refresh token:** %s Behaviour: `%s`.\n", t.Offline, t.Refresh)
	if t.TokenLifetimeSeconds > 0 {
		w("- **Assumed access-token lifetime:** %d s (the provider sends no `expires_in`)\n", t.TokenLifetimeSeconds)
	}
	if t.RefreshTokenIdleLifetimeSeconds > 0 {
		w("- **Refresh-token idle lifetime:** %d days (kept alive by a refresh after two thirds of it)\n", t.RefreshTokenIdleLifetimeSeconds/86400)
	}
	w("- **Client authentication:** `%s`; **PKCE:** %s\n", t.TokenEndpointAuthMethod, strings.ReplaceAll(t.PKCE, "_", " "))
	if len(t.AuthParams) > 0 {
		w("- **Authorization parameters:** %s\n", code(joinedPairs(t.AuthParams, "=")))
	}
	if len(t.TokenRequestHeaders) > 0 {
		w("- **Token request headers:** %s\n", code(joinedPairs(t.TokenRequestHeaders, ": ")))
	}
	if len(t.APIBaseURLs) > 0 || t.APIBaseURLProviderData != "" {
		bases := code(t.APIBaseURLs)
		if t.APIBaseURLProviderData != "" {
			bases = fmt.Sprintf("the connection's provider data `%s`", t.APIBaseURLProviderData)
			if len(t.APIBaseURLs) > 0 {
				bases += ", then " + code(t.APIBaseURLs)
			}
		}
		w("- **API proxy bases:** %s\n", bases)
	}
	if a := t.APIAuth; a != nil {
		name, prefix := a.TokenHeader()
		w("- **API proxy credential:** `%s: %sTOKEN`", name, prefix)
		if len(a.Headers) > 0 {
			w(", with %s", code(joinedPairs(a.Headers, ": ")))
		}
		w("\n")
	}
	if len(t.Placeholders) > 0 {
		var ps []string
		for _, ph := range t.Placeholders {
			ps = append(ps, fmt.Sprintf("`{%s}` (%s): %s, e.g. `%s`", ph.Name, ph.Kind, ph.Description, ph.Example))
		}
		w("- **Placeholders:** %s\n", strings.Join(ps, "; "))
	}
	w("- **Quirks:** %s\n", code(t.Quirks))
	if len(t.CallbackParams) > 0 {
		w("- **Callback parameters kept:** %s\n", code(t.CallbackParams))
	}
	if t.Notes != "" {
		w("- **Notes:** %s\n", t.Notes)
	}
	w("- **Sources:** %s\n", t.Source)

	w("\n```json\n{\"profile\": {\"template\": %q", t.Name)
	if len(t.Placeholders) > 0 {
		var ps []string
		for _, ph := range t.Placeholders {
			ps = append(ps, fmt.Sprintf("%q: %q", ph.Name, ph.Example))
		}
		w(", \"template_params\": {%s}", strings.Join(ps, ", "))
	}
	w(",\n             \"client_id\": \"…\", \"client_secret\": \"…\"}}\n```\n")
}

// joinedPairs is m as sorted "key<sep>value" strings.
func joinedPairs(m map[string]string, sep string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+sep+v)
	}
	slices.Sort(out)
	return out
}

// writeKeyTemplate documents an api_key or basic template: how the key is
// sent and checked instead of OAuth endpoints.
func writeKeyTemplate(b *strings.Builder, t Template) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("- **Documentation:** %s\n", t.DocsURL)
	w("- **Get the credential:** %s\n", t.AppRegistration)
	if t.AuthMode == provider.ModeBasic {
		w("- **Auth mode:** `basic`: `Authorization: Basic` with the user name and password\n")
	} else {
		w("- **Auth mode:** `api_key`, sent as `%s: %s<key>`\n", t.Credential.Injection.Header, t.Credential.Injection.ValuePrefix)
	}
	if v := t.Credential.Verify; v != nil {
		extra := ""
		if len(v.Headers) > 0 {
			pairs := joinedPairs(v.Headers, ": ")
			extra = " with `" + strings.Join(pairs, "`, `") + "`"
		}
		w("- **Verification request:** `%s %s`%s must answer %v\n", v.Method, v.URL, extra, v.ExpectStatus)
	}
	if t.Notes != "" {
		w("- **Notes:** %s\n", t.Notes)
	}
	w("- **Sources:** %s\n", t.Source)
	field := `"api_key": "…"`
	if t.AuthMode == provider.ModeBasic {
		field = `"username": "…", "password": "…"`
	}
	w("\n```json\n{\"profile\": {\"template\": %q}}\n```\n\nThen `request-connection` with `\"credentials\": {%s}`.\n", t.Name, field)
}
