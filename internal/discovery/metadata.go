package discovery

import (
	"fmt"
	"net/url"
)

// Metadata is the subset of an issuer's discovery document the broker uses.
// Field names follow OpenID Connect Discovery 1.0 §3 and RFC 8414 §2.
type Metadata struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	JWKSURI               string `json:"jwks_uri,omitempty"`
	UserinfoEndpoint      string `json:"userinfo_endpoint,omitempty"`
	RevocationEndpoint    string `json:"revocation_endpoint,omitempty"`

	ScopesSupported                   []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported            []string `json:"response_types_supported,omitempty"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported,omitempty"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported,omitempty"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`

	// AuthorizationResponseIssParameterSupported says the provider adds iss
	// to authorization responses (RFC 9207), which lets the callback detect
	// mix-up attacks.
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`

	// PushedAuthorizationRequestEndpoint and
	// RequirePushedAuthorizationRequests are RFC 9126's: where the request
	// is pushed, and whether the server accepts only pushed requests.
	PushedAuthorizationRequestEndpoint string `json:"pushed_authorization_request_endpoint,omitempty"`
	RequirePushedAuthorizationRequests bool   `json:"require_pushed_authorization_requests,omitempty"`

	// DeviceAuthorizationEndpoint is RFC 8628 §4's: where a device flow
	// starts.
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint,omitempty"`
}

// validate checks a decoded document against the issuer it was fetched for.
// The exact issuer comparison is what stops one provider's document (or an
// attacker's) from being accepted for another issuer (OIDC Discovery §4.3,
// RFC 8414 §3.3).
func validate(md Metadata, issuer string, issuerURL *url.URL) error {
	if md.Issuer != issuer {
		return fmt.Errorf("%w: the document names issuer %q, configured issuer is %q",
			ErrIssuerMismatch, truncate(md.Issuer, 200), issuer)
	}
	required := []struct{ field, value string }{
		{"authorization_endpoint", md.AuthorizationEndpoint},
		{"token_endpoint", md.TokenEndpoint},
	}
	for _, r := range required {
		if r.value == "" {
			return fmt.Errorf("%w: %s", ErrMissingEndpoint, r.field)
		}
	}
	endpoints := []struct{ field, value string }{
		{"authorization_endpoint", md.AuthorizationEndpoint},
		{"token_endpoint", md.TokenEndpoint},
		{"jwks_uri", md.JWKSURI},
		{"userinfo_endpoint", md.UserinfoEndpoint},
		{"revocation_endpoint", md.RevocationEndpoint},
		{"pushed_authorization_request_endpoint", md.PushedAuthorizationRequestEndpoint},
		{"device_authorization_endpoint", md.DeviceAuthorizationEndpoint},
	}
	for _, ep := range endpoints {
		if ep.value == "" {
			continue
		}
		if err := checkEndpoint(ep.value, issuerURL.Scheme == "https"); err != nil {
			return fmt.Errorf("%w: %s %v", ErrInvalidEndpoint, ep.field, err)
		}
	}
	return nil
}

// checkEndpoint requires an absolute http(s) URL. When the issuer itself is
// served over https, endpoints must be too: a document that downgrades the
// token endpoint to plain http would send client secrets in clear text.
func checkEndpoint(raw string, requireHTTPS bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("is not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("is not an absolute http(s) URL")
	case u.Host == "":
		return fmt.Errorf("has no host")
	case u.Fragment != "":
		return fmt.Errorf("has a fragment")
	case requireHTTPS && u.Scheme != "https":
		return fmt.Errorf("uses http although the issuer uses https")
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
