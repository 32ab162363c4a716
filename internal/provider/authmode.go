package provider

import (
	"fmt"
	"strings"

	"github.com/dromos-dev/dromos/internal/credential"
	"github.com/dromos-dev/dromos/internal/ctrlchar"
)

// Auth modes: how a connection to a provider gets its credential.
const (
	// ModeCode is the authorization-code grant with PKCE, a user's
	// consent in a browser: the default.
	ModeCode = "oauth2_code"
	// ModeClientCredentials is the client_credentials grant: no user, the
	// broker's own client gets the token (same as grant client_credentials).
	ModeClientCredentials = "oauth2_client_credentials"
	// ModeDeviceCode is the device authorization grant (RFC 8628).
	ModeDeviceCode = "oauth2_device_code"
	// ModeAPIKey is a static key the agent or user hands over.
	ModeAPIKey = "api_key"
	// ModeBasic is an HTTP basic user/password pair (RFC 7617).
	ModeBasic = "basic"
)

// AuthModes lists the modes, the default first.
func AuthModes() []string {
	return []string{ModeCode, ModeClientCredentials, ModeDeviceCode, ModeAPIKey, ModeBasic}
}

// Mode is the profile's auth mode with the default filled in.
func (p *Profile) Mode() string {
	switch {
	case p.AuthMode != "":
		return p.AuthMode
	case p.Grant == GrantClientCredentials:
		return ModeClientCredentials
	}
	return ModeCode
}

// KeyBased reports whether connections hold a key or password the agent
// or user supplies (api_key, basic) rather than an OAuth grant.
func (p *Profile) KeyBased() bool { return p.AuthMode == ModeAPIKey || p.AuthMode == ModeBasic }

// CredentialType is the credential.Type… a key-based profile's
// connections hold ("" for OAuth modes).
func (p *Profile) CredentialType() string {
	switch p.AuthMode {
	case ModeAPIKey:
		return credential.TypeAPIKey
	case ModeBasic:
		return credential.TypeBasic
	}
	return ""
}

// CredentialSpec is the profile's credential spec, defaults filled in.
func (p *Profile) CredentialSpec() credential.Spec {
	if p.Credential == nil {
		s := credential.Spec{}
		s.Normalize(p.CredentialType())
		return s
	}
	return *p.Credential
}

func (p *Profile) normalizeAuthMode() {
	p.AuthMode = strings.ToLower(strings.TrimSpace(p.AuthMode))
	p.DeviceAuthorizationURL = strings.TrimSpace(p.DeviceAuthorizationURL)
	if p.AuthMode == ModeClientCredentials && p.Grant == "" {
		// One switch for the refresher and the MCP path, which read Grant.
		p.Grant = GrantClientCredentials
	}
	if p.KeyBased() {
		if p.TokenEndpointAuthMethod == AuthAuto {
			p.TokenEndpointAuthMethod = "" // the default Normalize filled in: no token endpoint here
		}
		if p.Credential == nil {
			p.Credential = &credential.Spec{}
		}
		p.Credential.Normalize(p.CredentialType())
	}
}

// needsAuthURL reports whether the mode sends a browser to an
// authorization endpoint.
func (p *Profile) needsAuthURL() bool { return p.Mode() == ModeCode }

// oauthModeProblems checks auth_mode and what it needs for the OAuth modes.
func (p *Profile) oauthModeProblems() []string {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	switch p.AuthMode {
	case "", ModeCode, ModeClientCredentials, ModeDeviceCode:
	default:
		add("auth_mode must be one of %s", strings.Join(AuthModes(), ", "))
		return probs
	}
	if p.Grant == GrantClientCredentials && p.Mode() != ModeClientCredentials {
		add("grant client_credentials contradicts auth_mode %s", p.AuthMode)
	}
	if p.Credential != nil {
		add("credential is only for auth_mode api_key or basic")
	}
	if p.DeviceAuthorizationURL != "" {
		if err := checkEndpoint(p.DeviceAuthorizationURL); err != nil {
			add("device_authorization_url %v", err)
		}
		if err := ctrlchar.Check("device_authorization_url", p.DeviceAuthorizationURL); err != nil {
			add("%v", err)
		}
	}
	switch p.Mode() {
	case ModeDeviceCode:
		if p.DeviceAuthorizationURL == "" && !p.EnableDiscovery {
			add("auth_mode oauth2_device_code needs device_authorization_url (or issuer with enable_discovery)")
		}
	default:
		if p.DeviceAuthorizationURL != "" {
			add("device_authorization_url is only for auth_mode oauth2_device_code")
		}
	}
	if p.Mode() == ModeClientCredentials && p.TokenEndpointAuthMethod == AuthNone {
		add("auth_mode oauth2_client_credentials needs a client authentication method other than none")
	}
	return probs
}

// validateKeyBased checks an api_key or basic profile: a name and how the
// credential is sent and checked, and none of the OAuth client fields,
// which would suggest a flow that never runs.
func (p *Profile) validateKeyBased() error {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	if !nameRE.MatchString(p.Name) {
		add("name must be 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit")
	}
	for _, a := range p.Aliases {
		if !nameRE.MatchString(a) {
			add("alias %q is not a valid name", a)
		}
	}
	for _, f := range p.textFields() {
		if err := ctrlchar.Check(f.name, f.val); err != nil {
			add("%v", err)
		}
	}
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"client_id", p.ClientID != ""}, {"client_secret", p.ClientSecret.Reveal() != ""}, {"issuer", p.Issuer != ""},
		{"enable_discovery", p.EnableDiscovery}, {"auth_url", p.AuthURL != ""}, {"token_url", p.TokenURL != ""},
		{"revocation_url", p.RevocationURL != ""}, {"userinfo_url", p.UserinfoURL != ""}, {"jwks_url", p.JWKSURL != ""},
		{"resources_url", p.ResourcesURL != ""}, {"scopes", len(p.Scopes) > 0}, {"allowed_scopes", len(p.AllowedScopes) > 0},
		{"token_endpoint_auth_method", p.TokenEndpointAuthMethod != ""}, {"auth_params", len(p.AuthParams) > 0},
		{"token_request_headers", len(p.TokenRequestHeaders) > 0}, {"quirks", len(p.Quirks) > 0},
		{"token_lifetime_seconds", p.TokenLifetimeSeconds != 0}, {"resource", p.Resource != ""}, {"grant", p.Grant != ""},
		{"device_authorization_url", p.DeviceAuthorizationURL != ""}, {"trusted_audiences", len(p.TrustedAudiences) > 0},
		{"par_url", p.PARURL != ""}, {"use_par", p.UsePAR},
	} {
		if f.set {
			add("%s is an OAuth setting: auth_mode %s does not use it", f.name, p.AuthMode)
		}
	}
	spec := p.CredentialSpec()
	probs = append(probs, spec.Problems(p.CredentialType())...)
	if v := spec.Verify; v != nil {
		if err := ctrlchar.Check("credential.verify.url", v.URL); err != nil {
			add("%v", err)
		}
	}
	if len(probs) > 0 {
		return &ValidationError{Problems: probs}
	}
	return nil
}
