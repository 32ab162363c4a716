package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/dromos-dev/dromos/internal/credential"
	"github.com/dromos-dev/dromos/internal/ctrlchar"
	"github.com/dromos-dev/dromos/internal/scopeallow"
	"github.com/dromos-dev/dromos/internal/secret"
)

// Token endpoint client authentication methods.
const (
	AuthBasic = "client_secret_basic"
	AuthPost  = "client_secret_post"
	AuthAuto  = "auto"
	AuthNone  = "none"
	// AuthPrivateKeyJWT signs a client assertion (RFC 7523); the profile's
	// client_secret is then the PEM private key.
	AuthPrivateKeyJWT = "private_key_jwt"
)

// GrantClientCredentials marks a provider whose connections use the
// client_credentials grant: no user, the broker asks again for a token
// when the one it holds runs out.
const GrantClientCredentials = "client_credentials"

// Profile is a provider registration as operators write it. ClientSecret is
// accepted on input only: it is sealed before storage and never marshalled
// back (the field is dropped by Public).
type Profile struct {
	// Template names a catalog entry (internal/catalog) whose fields fill
	// in whatever this profile leaves empty; TemplateParams fills the
	// entry's placeholders ({tenant}, {subdomain}, {shop}…).
	Template        string            `json:"template,omitempty"`
	TemplateParams  map[string]string `json:"template_params,omitempty"`
	Name            string            `json:"name"`
	DisplayName     string            `json:"display_name,omitempty"`
	Aliases         []string          `json:"aliases,omitempty"`
	Issuer          string            `json:"issuer,omitempty"`
	EnableDiscovery bool              `json:"enable_discovery,omitempty"`
	AuthURL         string            `json:"auth_url,omitempty"`
	TokenURL        string            `json:"token_url,omitempty"`
	RevocationURL   string            `json:"revocation_url,omitempty"`
	UserinfoURL     string            `json:"userinfo_url,omitempty"`
	JWKSURL         string            `json:"jwks_url,omitempty"`
	// PARURL is the pushed authorization request endpoint (RFC 9126) when
	// discovery does not give one; UsePAR pushes every authorization
	// request there even when the provider does not require it.
	PARURL string `json:"par_url,omitempty"`
	UsePAR bool   `json:"use_par,omitempty"`
	// ResourcesURL overrides where a resource lookup quirk
	// (atlassian_resources, xero_tenants) reads the sites or tenants a new
	// token reaches.
	ResourcesURL string        `json:"resources_url,omitempty"`
	ClientID     string        `json:"client_id"`
	ClientSecret secret.String `json:"client_secret,omitempty"`
	Scopes       []string      `json:"scopes,omitempty"`
	// AllowedScopes limits the scopes an agent may ask for (package
	// scopeallow): exact scopes, or prefixes ending in '*'. Empty allows
	// every syntactically valid scope.
	AllowedScopes           []string          `json:"allowed_scopes,omitempty"`
	TokenEndpointAuthMethod string            `json:"token_endpoint_auth_method,omitempty"`
	AuthParams              map[string]string `json:"auth_params,omitempty"`
	// TokenRequestHeaders are sent with every token, refresh and
	// revocation request (an API version header such as Notion-Version).
	// They are stored and shown in the clear: not a place for secrets.
	TokenRequestHeaders map[string]string `json:"token_request_headers,omitempty"`
	Quirks              []string          `json:"quirks,omitempty"`
	// TokenLifetimeSeconds is the access-token lifetime to assume when the
	// provider's token response has no expires_in and the token is not a
	// JWT with exp, for providers whose tokens expire without saying so
	// (Salesforce's session timeout). 0 means unknown.
	TokenLifetimeSeconds int64 `json:"token_lifetime_seconds,omitempty"`
	// RefreshTokenIdleLifetimeSeconds is how long the provider keeps an
	// unused refresh token (Microsoft: 90 days). The background worker
	// refreshes connections left unrefreshed for two thirds of it, so the
	// grant does not lapse; 0 means refresh tokens do not lapse when idle,
	// and nothing is refreshed just to keep it alive.
	RefreshTokenIdleLifetimeSeconds int64 `json:"refresh_token_idle_lifetime_seconds,omitempty"`
	// TokenCallsPerMinute caps the broker's refreshes and code exchanges
	// at the provider's token endpoint, counted in the database across
	// every replica; a fifth of it (at least one call) is kept for
	// refreshes an agent is waiting on and for exchanges. 0 means no cap.
	TokenCallsPerMinute int `json:"token_calls_per_minute,omitempty"`
	// Resource is an RFC 8707 resource indicator sent on the authorization,
	// token and refresh requests, so the tokens are issued for that
	// resource only (an MCP server's URL).
	Resource string `json:"resource,omitempty"`
	// Grant is "" (authorization code) or client_credentials.
	Grant string `json:"grant,omitempty"`
	// TrustedAudiences are the audiences an id_token may list besides the
	// client id (OIDC Core §3.1.3.7 item 3); a token naming any other is
	// refused. Empty: the client id alone.
	TrustedAudiences []string `json:"trusted_audiences,omitempty"`
	// AuthMode says how connections to this provider get their credential
	// (see authmode.go); empty is oauth2_code.
	AuthMode string `json:"auth_mode,omitempty"`
	// DeviceAuthorizationURL is the RFC 8628 endpoint of an
	// oauth2_device_code provider (discovered when enable_discovery).
	DeviceAuthorizationURL string `json:"device_authorization_url,omitempty"`
	// Credential says how an api_key or basic credential is sent and
	// checked.
	Credential *credential.Spec `json:"credential,omitempty"`
	// APIBaseURLs are where the gateway's API proxy may send a
	// connection's requests, the first being the default (apiaccess.go).
	APIBaseURLs []string `json:"api_base_urls,omitempty"`
	// APIBaseURLProviderData names a provider data member (Salesforce's
	// instance_url) whose value, an http(s) origin, is the connection's
	// own API base, listed before APIBaseURLs.
	APIBaseURLProviderData string `json:"api_base_url_provider_data,omitempty"`
	// APIAuth is how the proxy presents the token; nil is Bearer.
	APIAuth *APIAuth `json:"api_auth,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// reservedAuthParams are set by the broker itself; a profile may not
// override them, or a registration could disable PKCE or redirect codes.
var reservedAuthParams = map[string]bool{
	"client_id": true, "redirect_uri": true, "response_type": true, "state": true,
	"nonce": true, "code_challenge": true, "code_challenge_method": true, "scope": true,
	"resource": true,
}

// Normalize lower-cases names, trims values, drops duplicate aliases and
// scopes, fills defaults and switches on quirks implied by well-known
// issuers (Google's offline access rules).
func (p *Profile) Normalize() {
	p.Name = strings.ToLower(strings.TrimSpace(p.Name))
	var aliases []string
	for _, a := range p.Aliases {
		a = strings.ToLower(strings.TrimSpace(a))
		if a != "" && a != p.Name && !slices.Contains(aliases, a) {
			aliases = append(aliases, a)
		}
	}
	p.Aliases = aliases
	for _, f := range []*string{&p.Issuer, &p.AuthURL, &p.TokenURL, &p.RevocationURL, &p.UserinfoURL, &p.JWKSURL, &p.PARURL, &p.ResourcesURL, &p.ClientID, &p.DisplayName, &p.Resource} {
		*f = strings.TrimSpace(*f)
	}
	p.Scopes = dedupe(p.Scopes)
	p.AllowedScopes = dedupe(p.AllowedScopes)
	if h, dup := CanonicalHeaders(p.TokenRequestHeaders); dup == "" {
		p.TokenRequestHeaders = h // a name given twice is left for Validate to report
	}
	if p.TokenEndpointAuthMethod == "" {
		p.TokenEndpointAuthMethod = AuthAuto
	}
	if p.DisplayName == "" {
		p.DisplayName = p.Name
	}
	if isGoogle(p) && !slices.Contains(p.Quirks, QuirkGoogleOffline) {
		p.Quirks = append(p.Quirks, QuirkGoogleOffline)
	}
	p.Quirks = dedupe(p.Quirks)
	p.normalizeAuthMode()
	p.normalizeAPI()
}

func isGoogle(p *Profile) bool {
	if strings.TrimSuffix(p.Issuer, "/") == "https://accounts.google.com" {
		return true
	}
	u, err := url.Parse(p.AuthURL)
	return err == nil && strings.EqualFold(u.Hostname(), "accounts.google.com")
}

func dedupe(in []string) []string {
	var out []string
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// ValidationError lists every problem with a profile at once.
type ValidationError struct{ Problems []string }

func (e *ValidationError) Error() string {
	return "invalid provider profile: " + strings.Join(e.Problems, "; ")
}

// Validate reports every problem with a normalised profile. It does not
// check that discovery works: that needs the network and is the broker's.
func (p *Profile) Validate() error {
	if p.KeyBased() {
		return p.validateKeyBased()
	}
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	probs = append(probs, p.oauthModeProblems()...)
	if !nameRE.MatchString(p.Name) {
		add("name must be 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit")
	}
	for _, a := range p.Aliases {
		if !nameRE.MatchString(a) {
			add("alias %q is not a valid name", a)
		}
	}
	if p.ClientID == "" {
		add("client_id is required")
	}
	for _, f := range p.textFields() {
		if err := ctrlchar.Check(f.name, f.val); err != nil {
			add("%v", err)
		}
	}
	if p.EnableDiscovery && p.Issuer == "" {
		add("enable_discovery needs issuer")
	}
	if !p.EnableDiscovery && (p.TokenURL == "" || (p.AuthURL == "" && p.needsAuthURL())) {
		add("auth_url and token_url are required unless issuer with enable_discovery is given")
	}
	for _, f := range []struct{ name, val string }{
		{"issuer", p.Issuer}, {"auth_url", p.AuthURL}, {"token_url", p.TokenURL},
		{"revocation_url", p.RevocationURL}, {"userinfo_url", p.UserinfoURL}, {"jwks_url", p.JWKSURL},
		{"par_url", p.PARURL}, {"resources_url", p.ResourcesURL}, {"resource", p.Resource},
	} {
		if f.val != "" {
			if err := checkEndpoint(f.val); err != nil {
				add("%s %v", f.name, err)
			}
		}
	}
	switch p.TokenEndpointAuthMethod {
	case AuthBasic, AuthPost, AuthAuto, AuthNone, AuthPrivateKeyJWT:
	default:
		add("token_endpoint_auth_method must be %s, %s, %s, %s or %s", AuthBasic, AuthPost, AuthAuto, AuthNone, AuthPrivateKeyJWT)
	}
	if p.Grant != "" && p.Grant != GrantClientCredentials {
		add("grant must be empty (authorization code) or %s", GrantClientCredentials)
	}
	if p.TokenEndpointAuthMethod != AuthNone && p.ClientSecret.Reveal() == "" {
		add("client_secret is required unless token_endpoint_auth_method is none")
	}
	if p.TokenLifetimeSeconds < 0 {
		add("token_lifetime_seconds must not be negative")
	}
	if p.UsePAR && p.PARURL == "" && !p.EnableDiscovery {
		add("use_par needs par_url, or an issuer with enable_discovery whose metadata names the endpoint")
	}
	if len(p.TrustedAudiences) > 20 {
		add("trusted_audiences may hold at most 20 entries")
	}
	for i, a := range p.TrustedAudiences {
		if a == "" || len(a) > 255 || ctrlchar.Index(a) >= 0 {
			add("trusted_audiences[%d] must be 1-255 characters without control characters", i)
		}
	}
	if p.TokenCallsPerMinute < 0 {
		add("token_calls_per_minute must not be negative")
	}
	if p.RefreshTokenIdleLifetimeSeconds < 0 {
		add("refresh_token_idle_lifetime_seconds must not be negative")
	}
	for k := range p.AuthParams {
		if reservedAuthParams[strings.ToLower(k)] {
			add("auth_params may not set %q: the broker sets it", k)
		}
	}
	probs = append(probs, checkTokenRequestHeaders(p.TokenRequestHeaders)...)
	probs = append(probs, p.apiProblems()...)
	probs = append(probs, scopeallow.Problems(p.AllowedScopes)...)
	if d := scopeallow.Disallowed(p.AllowedScopes, p.Scopes); len(d) > 0 {
		add("scopes %s are outside allowed_scopes", strings.Join(d, " "))
	}
	for _, q := range p.Quirks {
		if _, ok := quirks[q]; !ok {
			add("unknown quirk %q", q)
		}
	}
	switch n := p.lookupQuirks(); {
	case n > 1:
		add("at most one resource lookup quirk (%s, %s)", QuirkAtlassianResources, QuirkXeroTenants)
	case n == 0 && p.ResourcesURL != "":
		add("resources_url needs a resource lookup quirk (%s or %s)", QuirkAtlassianResources, QuirkXeroTenants)
	}
	if len(probs) > 0 {
		return &ValidationError{Problems: probs}
	}
	return nil
}

// maxTokenRequestHeaders bounds token_request_headers: a version header or
// two is the use; more is a mistake.
const maxTokenRequestHeaders = 8

// brokerHeaders are set by the exchange client itself (client
// authentication, body type, what it accepts) or by net/http.
var brokerHeaders = map[string]bool{
	"Authorization": true, "Content-Type": true, "Accept": true, "Content-Length": true, "Host": true,
	"Transfer-Encoding": true, "Connection": true, "User-Agent": true, "Cookie": true,
}

// CanonicalHeaders is h with canonical header names (Notion-Version for
// notion-version). dup names a header h holds twice under different
// spellings; the result is then nil.
func CanonicalHeaders(h map[string]string) (out map[string]string, dup string) {
	if len(h) == 0 {
		return h, ""
	}
	out = make(map[string]string, len(h))
	for _, k := range slices.Sorted(maps.Keys(h)) {
		c := http.CanonicalHeaderKey(k)
		if _, taken := out[c]; taken {
			return nil, c
		}
		out[c] = h[k]
	}
	return out, ""
}

func checkTokenRequestHeaders(h map[string]string) []string {
	var probs []string
	if _, dup := CanonicalHeaders(h); dup != "" {
		probs = append(probs, fmt.Sprintf("token_request_headers names %s twice", dup))
	}
	if len(h) > maxTokenRequestHeaders {
		probs = append(probs, fmt.Sprintf("token_request_headers may hold at most %d headers", maxTokenRequestHeaders))
	}
	names := slices.Sorted(maps.Keys(h))
	for _, k := range names {
		v := h[k]
		switch {
		case !httpguts.ValidHeaderFieldName(k):
			probs = append(probs, fmt.Sprintf("token_request_headers: %q is not a valid header name", k))
		case brokerHeaders[http.CanonicalHeaderKey(k)]:
			probs = append(probs, fmt.Sprintf("token_request_headers may not set %s: the broker sets it", http.CanonicalHeaderKey(k)))
		case v == "" || len(v) > 256 || !httpguts.ValidHeaderFieldValue(v) || strings.TrimSpace(v) != v:
			probs = append(probs, fmt.Sprintf("token_request_headers: the value of %s must be 1-256 printable characters without surrounding spaces", k))
		}
	}
	return probs
}

type textField struct{ name, val string }

// textFields lists the profile's free-text values, which are shown to
// operators (dromos providers list) and agents (GET /v1/providers) and so
// must hold no control characters. Keys of maps count as text too.
func (p *Profile) textFields() []textField {
	out := []textField{{"display_name", p.DisplayName}, {"client_id", p.ClientID}, {"template", p.Template},
		{"issuer", p.Issuer}, {"auth_url", p.AuthURL}, {"token_url", p.TokenURL}, {"revocation_url", p.RevocationURL},
		{"userinfo_url", p.UserinfoURL}, {"jwks_url", p.JWKSURL}, {"par_url", p.PARURL}, {"resources_url", p.ResourcesURL}}
	for i, s := range p.Scopes {
		out = append(out, textField{fmt.Sprintf("scopes[%d]", i), s})
	}
	for _, m := range []struct {
		name string
		m    map[string]string
	}{{"auth_params", p.AuthParams}, {"template_params", p.TemplateParams}} {
		for _, k := range slices.Sorted(maps.Keys(m.m)) {
			out = append(out, textField{m.name + " key", k}, textField{fmt.Sprintf("%s[%q]", m.name, k), m.m[k]})
		}
	}
	return out
}

func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return errors.New("must be an http(s) URL")
	}
	if u.Host == "" {
		return errors.New("must be an absolute URL")
	}
	if u.User != nil {
		return errors.New("must not contain credentials")
	}
	if u.Fragment != "" {
		return errors.New("must not contain a fragment")
	}
	return nil
}

// StoredConfig is the profile as JSON without its secret: what storage keeps
// in providers.config.
func (p Profile) StoredConfig() ([]byte, error) {
	p.ClientSecret = ""
	return json.Marshal(p)
}

// FromStoredConfig decodes a stored profile (its secret stays empty).
func FromStoredConfig(b []byte) (Profile, error) {
	var p Profile
	if err := json.Unmarshal(b, &p); err != nil {
		return Profile{}, fmt.Errorf("decoding stored provider profile: %w", err)
	}
	return p, nil
}
