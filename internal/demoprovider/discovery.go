package demoprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// supportedScopes lists the scopes the provider grants, in the order the
// discovery document names them.
func supportedScopes() []string {
	return []string{"openid", "profile", "email", "offline_access", "demo.read", "demo.write"}
}

// scopeDescription is the line the consent page shows for a scope; ok is
// false for scopes the provider does not grant.
func scopeDescription(scope string) (desc string, ok bool) {
	switch scope {
	case "openid":
		return "Sign you in and identify you to the application", true
	case "profile":
		return "Your name and username", true
	case "email":
		return "Your e-mail address", true
	case "offline_access":
		return "Keep access while you are away (refresh token)", true
	case "demo.read":
		return "Read your demo data", true
	case "demo.write":
		return "Change your demo data", true
	}
	return "", false
}

// discoveryDocument is the OpenID Provider Metadata (OIDC Discovery 3).
func (p *Provider) discoveryDocument() ([]byte, error) {
	authMethods := []string{"client_secret_basic", "client_secret_post"}
	doc := map[string]any{
		"issuer":                                p.issuer,
		"authorization_endpoint":                p.endpoint("/authorize"),
		"token_endpoint":                        p.endpoint("/token"),
		"jwks_uri":                              p.endpoint("/jwks"),
		"userinfo_endpoint":                     p.endpoint("/userinfo"),
		"revocation_endpoint":                   p.endpoint("/revoke"),
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      supportedScopes(),
		"claims_supported": []string{
			"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
			"email", "email_verified", "name", "preferred_username",
		},
		"token_endpoint_auth_methods_supported":          authMethods,
		"revocation_endpoint_auth_methods_supported":     authMethods,
		"code_challenge_methods_supported":               []string{"S256"},
		"authorization_response_iss_parameter_supported": true,
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("demoprovider: marshal discovery document: %w", err)
	}
	return b, nil
}

func (p *Provider) handleDiscovery(w http.ResponseWriter, _ *http.Request) {
	writeJSONBytes(w, http.StatusOK, p.discovery)
}

func (p *Provider) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	writeJSONBytes(w, http.StatusOK, p.keys.jwks)
}

func writeJSONBytes(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
