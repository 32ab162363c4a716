package catalog

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/dromos-dev/dromos/internal/credential"
	"github.com/dromos-dev/dromos/internal/provider"
)

//go:embed catalog.json
var catalogJSON []byte

// Sentinel errors for callers to test with errors.Is.
var (
	// ErrInvalidCatalog: the catalog data breaks a rule (only a broken
	// build can produce it for the embedded file; a test guards it).
	ErrInvalidCatalog = errors.New("catalog: invalid catalog")
	// ErrUnknownTemplate: a profile names a template the catalog lacks.
	ErrUnknownTemplate = errors.New("catalog: unknown provider template")
	// ErrTemplateParams: template_params are missing, unknown or malformed.
	ErrTemplateParams = errors.New("catalog: invalid template parameters")
)

// How a provider treats refresh tokens.
const (
	RefreshRotating    = "rotating"     // each refresh returns a new refresh token; the old one dies
	RefreshReusable    = "reusable"     // the same refresh token keeps working
	RefreshNonExpiring = "non_expiring" // access tokens do not expire; nothing to refresh
	RefreshNone        = "none"         // access tokens expire and there is no refresh token
)

// PKCE support as the provider documents it. The broker always sends an
// S256 challenge; providers without PKCE ignore it.
const (
	PKCERequired      = "required"
	PKCESupported     = "supported"
	PKCENotDocumented = "not_documented"
)

// Template is one catalog entry: the provider facts a registration would
// otherwise copy from documentation.
type Template struct {
	Name    string   `json:"name"`
	Aliases []string `json:"aliases,omitempty"`
	// DisplayName, DocsURL (the provider's own OAuth documentation),
	// AppRegistration (where and how to create the OAuth app), Source
	// (where each fact came from, and what is unverified) and Notes are
	// documentation; only DisplayName reaches the profile.
	DisplayName     string `json:"display_name"`
	DocsURL         string `json:"docs_url"`
	AppRegistration string `json:"app_registration"`
	Source          string `json:"source"`
	Notes           string `json:"notes,omitempty"`

	// Issuer and the URLs may hold {placeholders}; see Placeholders.
	Issuer                  string            `json:"issuer,omitempty"`
	EnableDiscovery         bool              `json:"enable_discovery,omitempty"`
	AuthURL                 string            `json:"auth_url,omitempty"`
	TokenURL                string            `json:"token_url,omitempty"`
	RevocationURL           string            `json:"revocation_url,omitempty"`
	UserinfoURL             string            `json:"userinfo_url,omitempty"`
	JWKSURL                 string            `json:"jwks_url,omitempty"`
	Scopes                  []string          `json:"scopes"`
	ScopeSeparator          string            `json:"scope_separator"`
	PKCE                    string            `json:"pkce"`
	TokenEndpointAuthMethod string            `json:"token_endpoint_auth_method"`
	AuthParams              map[string]string `json:"auth_params,omitempty"`
	// TokenRequestHeaders go with every token, refresh and revocation
	// request (a provider's API version header).
	TokenRequestHeaders map[string]string `json:"token_request_headers,omitempty"`
	// Refresh is one of the Refresh… constants; Offline says what makes
	// the provider return a refresh token.
	Refresh              string `json:"refresh"`
	Offline              string `json:"offline"`
	TokenLifetimeSeconds int64  `json:"token_lifetime_seconds,omitempty"`
	// RefreshTokenIdleLifetimeSeconds: see provider.Profile.
	RefreshTokenIdleLifetimeSeconds int64         `json:"refresh_token_idle_lifetime_seconds,omitempty"`
	Quirks                          []string      `json:"quirks,omitempty"`
	CallbackParams                  []string      `json:"callback_params,omitempty"`
	Placeholders                    []Placeholder `json:"placeholders,omitempty"`
	// AuthMode is the provider's provider.Mode… ("" is oauth2_code); a
	// key-based template (api_key, basic) has Credential instead of the
	// OAuth fields, and an OAuth template may name its RFC 8628 endpoint.
	AuthMode               string           `json:"auth_mode,omitempty"`
	DeviceAuthorizationURL string           `json:"device_authorization_url,omitempty"`
	Credential             *credential.Spec `json:"credential,omitempty"`
	// APIBaseURLs (may hold placeholders), APIBaseURLProviderData and
	// APIAuth are where and how the gateway's API proxy calls the
	// provider's API (provider.Profile's fields of the same names).
	APIBaseURLs            []string          `json:"api_base_urls,omitempty"`
	APIBaseURLProviderData string            `json:"api_base_url_provider_data,omitempty"`
	APIAuth                *provider.APIAuth `json:"api_auth,omitempty"`
}

// Placeholder is a {name} in a template's URLs, filled from the profile's
// template_params.
type Placeholder struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Description string `json:"description"`
	Example     string `json:"example"`
}

// clone deep-copies t, so that callers cannot change the catalog.
func (t Template) clone() Template {
	t.Aliases = slices.Clone(t.Aliases)
	t.Scopes = slices.Clone(t.Scopes)
	t.AuthParams = maps.Clone(t.AuthParams)
	t.TokenRequestHeaders = maps.Clone(t.TokenRequestHeaders)
	t.Quirks = slices.Clone(t.Quirks)
	t.CallbackParams = slices.Clone(t.CallbackParams)
	t.Placeholders = slices.Clone(t.Placeholders)
	t.Credential = cloneSpec(t.Credential)
	t.APIBaseURLs = slices.Clone(t.APIBaseURLs)
	t.APIAuth = cloneAPIAuth(t.APIAuth)
	return t
}

// Catalog is the parsed, validated set of templates. It is immutable and
// safe for concurrent use.
type Catalog struct {
	templates []Template     // sorted by name
	index     map[string]int // lower-case name or alias → position
}

// Load parses and validates the embedded catalog.
func Load() (*Catalog, error) {
	return parse(catalogJSON)
}

type catalogFile struct {
	Templates []Template `json:"templates"`
}

func parse(data []byte) (*Catalog, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f catalogFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCatalog, err)
	}
	c := &Catalog{index: make(map[string]int)}
	var probs []string
	for _, t := range f.Templates {
		for _, p := range validateTemplate(t) {
			probs = append(probs, fmt.Sprintf("template %q: %s", t.Name, p))
		}
	}
	c.templates = slices.Clone(f.Templates)
	slices.SortFunc(c.templates, func(a, b Template) int { return strings.Compare(a.Name, b.Name) })
	for i, t := range c.templates {
		for _, key := range append([]string{t.Name}, t.Aliases...) {
			if _, dup := c.index[key]; dup {
				probs = append(probs, fmt.Sprintf("name or alias %q used twice", key))
				continue
			}
			c.index[key] = i
		}
	}
	if len(f.Templates) == 0 {
		probs = append(probs, "no templates")
	}
	if len(probs) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrInvalidCatalog, strings.Join(probs, "; "))
	}
	return c, nil
}

// Names lists the template names, sorted.
func (c *Catalog) Names() []string {
	out := make([]string, len(c.templates))
	for i, t := range c.templates {
		out[i] = t.Name
	}
	return out
}

// Get returns the template with the given name or alias, ignoring case.
func (c *Catalog) Get(name string) (Template, bool) {
	i, ok := c.index[strings.ToLower(strings.TrimSpace(name))]
	if !ok {
		return Template{}, false
	}
	return c.templates[i].clone(), true
}

var (
	templateNameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	placeholderNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	placeholderRefRE  = regexp.MustCompile(`\{([^{}]*)\}`)
)

// validateTemplate lists every rule t breaks.
func validateTemplate(t Template) []string {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }

	if !templateNameRE.MatchString(t.Name) {
		add("name must be a valid provider name")
	}
	if t.AuthMode == provider.ModeAPIKey || t.AuthMode == provider.ModeBasic {
		return validateKeyTemplate(t)
	}
	for _, a := range t.Aliases {
		if !templateNameRE.MatchString(a) || a == t.Name {
			add("alias %q is not a valid, distinct name", a)
		}
	}
	for field, v := range map[string]string{"display_name": t.DisplayName, "app_registration": t.AppRegistration,
		"source": t.Source, "offline": t.Offline} {
		if strings.TrimSpace(v) == "" {
			add("%s is required", field)
		}
	}
	if !strings.HasPrefix(t.DocsURL, "https://") || strings.ContainsAny(t.DocsURL, "{} ") {
		add("docs_url must be an https URL")
	}
	if t.EnableDiscovery && t.Issuer == "" {
		add("enable_discovery needs issuer")
	}
	if !t.EnableDiscovery && (t.AuthURL == "" || t.TokenURL == "") {
		add("auth_url and token_url are required without discovery")
	}
	switch t.ScopeSeparator {
	case " ", ",":
	default:
		add("scope_separator must be a space or a comma")
	}
	switch t.PKCE {
	case PKCERequired, PKCESupported, PKCENotDocumented:
	default:
		add("pkce must be %s, %s or %s", PKCERequired, PKCESupported, PKCENotDocumented)
	}
	switch t.TokenEndpointAuthMethod {
	case provider.AuthBasic, provider.AuthPost, provider.AuthAuto:
	default:
		add("token_endpoint_auth_method must be %s, %s or %s", provider.AuthBasic, provider.AuthPost, provider.AuthAuto)
	}
	switch t.Refresh {
	case RefreshRotating, RefreshReusable, RefreshNone:
	case RefreshNonExpiring:
		if t.TokenLifetimeSeconds != 0 {
			// The broker would expire such connections after the assumed
			// lifetime, having no refresh token to renew them.
			add("a non_expiring provider must not set token_lifetime_seconds")
		}
	default:
		add("refresh must be %s, %s, %s or %s", RefreshRotating, RefreshReusable, RefreshNonExpiring, RefreshNone)
	}
	if t.TokenLifetimeSeconds < 0 {
		add("token_lifetime_seconds must not be negative")
	}
	if t.RefreshTokenIdleLifetimeSeconds < 0 {
		add("refresh_token_idle_lifetime_seconds must not be negative")
	}
	known := provider.KnownQuirks()
	for _, q := range t.Quirks {
		if !slices.Contains(known, q) {
			add("unknown quirk %q", q)
		}
	}
	// The documented behaviour must be the behaviour the quirks produce.
	probe := provider.Profile{Quirks: t.Quirks}
	if probe.ScopeSeparator() != t.ScopeSeparator {
		add("scope_separator %q does not match what the quirks produce (%q)", t.ScopeSeparator, probe.ScopeSeparator())
	}
	wantCallback := slices.Clone(t.CallbackParams)
	slices.Sort(wantCallback)
	if !slices.Equal(wantCallback, probe.CallbackParams()) {
		add("callback_params %v do not match what the quirks keep %v", t.CallbackParams, probe.CallbackParams())
	}
	for k, v := range t.AuthParams {
		if strings.ContainsAny(k+v, "{}") {
			add("auth_params may not hold placeholders")
		}
	}
	for k, v := range t.TokenRequestHeaders {
		if strings.ContainsAny(k+v, "{}") {
			add("token_request_headers may not hold placeholders")
		}
	}
	probs = append(probs, validatePlaceholders(t)...)
	if len(probs) > 0 {
		slices.Sort(probs)
		return probs
	}
	// Last, the whole template must expand into a valid profile.
	params := make(map[string]string, len(t.Placeholders))
	for _, ph := range t.Placeholders {
		params[ph.Name] = ph.Example
	}
	if _, err := expandTemplate(t, provider.Profile{Template: t.Name, TemplateParams: params,
		ClientID: "catalog-check", ClientSecret: "catalog-check"}); err != nil {
		add("expanding with the examples: %v", err)
	}
	return probs
}

// urlFields are the template fields that may hold placeholders.
func (t Template) urlFields() map[string]string {
	out := map[string]string{"issuer": t.Issuer, "auth_url": t.AuthURL, "token_url": t.TokenURL,
		"revocation_url": t.RevocationURL, "userinfo_url": t.UserinfoURL, "jwks_url": t.JWKSURL,
		"device_authorization_url": t.DeviceAuthorizationURL}
	for i, b := range t.APIBaseURLs {
		out[fmt.Sprintf("api_base_urls[%d]", i)] = b
	}
	return out
}

func cloneAPIAuth(a *provider.APIAuth) *provider.APIAuth {
	if a == nil {
		return nil
	}
	c := *a
	c.Headers = maps.Clone(a.Headers)
	return &c
}

func validatePlaceholders(t Template) []string {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	declared := make(map[string]Placeholder, len(t.Placeholders))
	for _, ph := range t.Placeholders {
		if !placeholderNameRE.MatchString(ph.Name) {
			add("placeholder name %q is not [a-z][a-z0-9_]*", ph.Name)
		}
		if _, dup := declared[ph.Name]; dup {
			add("placeholder %q declared twice", ph.Name)
		}
		declared[ph.Name] = ph
		k, ok := kinds[ph.Kind]
		if !ok {
			add("placeholder %q has unknown kind %q", ph.Name, ph.Kind)
		} else if _, err := k.check(ph.Example); err != nil {
			add("placeholder %q example: %v", ph.Name, err)
		}
		if strings.TrimSpace(ph.Description) == "" {
			add("placeholder %q needs a description", ph.Name)
		}
	}
	used := make(map[string]bool)
	for field, v := range t.urlFields() {
		if v == "" {
			continue
		}
		for _, m := range placeholderRefRE.FindAllStringSubmatch(v, -1) {
			ph, ok := declared[m[1]]
			if !ok {
				add("%s uses undeclared placeholder {%s}", field, m[1])
				continue
			}
			used[ph.Name] = true
			if ph.Kind == kindBaseURL && (!strings.HasPrefix(v, "{"+ph.Name+"}") || strings.Count(v, "{"+ph.Name+"}") > 1) {
				add("%s: a base_url placeholder may only start a URL", field)
			}
		}
		if strings.Count(v, "{") != strings.Count(v, "}") {
			add("%s has unbalanced braces", field)
		}
		if _, err := splitTemplate(v, declared); err != nil {
			add("%s: %v", field, err)
		}
	}
	for name := range declared {
		if !used[name] {
			add("placeholder %q is never used", name)
		}
	}
	return probs
}
