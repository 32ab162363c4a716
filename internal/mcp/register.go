package mcp

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/dromos-dev/dromos/internal/secret"
)

// Token endpoint authentication methods.
const (
	AuthBasic      = "client_secret_basic"
	AuthPost       = "client_secret_post"
	AuthNone       = "none"
	AuthPrivateJWT = "private_key_jwt"
)

// Client is an OAuth client at one authorization server.
type Client struct {
	ClientID     string
	ClientSecret secret.String
	// AuthMethod is the token endpoint authentication method.
	AuthMethod string
}

// ChooseAuthMethod picks the method to register with from what the server
// supports, preferring a confidential client. RFC 8414's default for an
// empty list is client_secret_basic.
func ChooseAuthMethod(supported []string) string {
	if len(supported) == 0 {
		return AuthBasic
	}
	for _, m := range []string{AuthBasic, AuthPost, AuthNone} {
		if slices.Contains(supported, m) {
			return m
		}
	}
	return ""
}

// RegistrationRequest is the RFC 7591 client metadata the broker sends.
type RegistrationRequest struct {
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	Scope                   string   `json:"scope,omitempty"`
}

type registrationResponse struct {
	ClientID                string `json:"client_id"`
	ClientSecret            string `json:"client_secret"`
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method"`
}

// Register registers a client dynamically (RFC 7591) at the server of md.
func (d *Discoverer) Register(ctx context.Context, md ServerMetadata, req RegistrationRequest) (Client, error) {
	if md.RegistrationEndpoint == "" {
		return Client{}, fail(CodeNoClient, nil, "authorization server %s offers no dynamic client registration, no client ID metadata document support, and no client was registered for it by the operator", safeURL(md.Issuer))
	}
	if req.TokenEndpointAuthMethod == "" {
		req.TokenEndpointAuthMethod = ChooseAuthMethod(md.TokenEndpointAuthMethodsSupported)
		if req.TokenEndpointAuthMethod == "" {
			return Client{}, fail(CodeNoClient, nil, "authorization server %s supports none of the token endpoint authentication methods the broker registers with (client_secret_basic, client_secret_post, none)", safeURL(md.Issuer))
		}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return Client{}, err
	}
	r, err := d.do(ctx, http.MethodPost, md.RegistrationEndpoint, body, http.Header{
		"Content-Type": {"application/json"}, "Accept": {"application/json"}})
	if err != nil {
		if e, ok := err.(*Error); ok && e.Code == CodeUnreachable {
			e.Code = CodeRegistrationFailed
		}
		return Client{}, err
	}
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		return Client{}, fail(CodeRegistrationFailed, nil, "dynamic client registration at %s answered HTTP %d", safeURL(md.RegistrationEndpoint), r.status)
	}
	var rr registrationResponse
	if err := decodeJSON(r, &rr); err != nil {
		return Client{}, fail(CodeRegistrationFailed, err, "dynamic client registration at %s did not answer client metadata", safeURL(md.RegistrationEndpoint))
	}
	rr.ClientID = strings.TrimSpace(rr.ClientID)
	if rr.ClientID == "" || len(rr.ClientID) > 1024 || len(rr.ClientSecret) > 4096 {
		return Client{}, fail(CodeRegistrationFailed, nil, "dynamic client registration at %s answered without a usable client_id", safeURL(md.RegistrationEndpoint))
	}
	method := req.TokenEndpointAuthMethod
	if rr.TokenEndpointAuthMethod != "" {
		method = rr.TokenEndpointAuthMethod
	}
	switch {
	case rr.ClientSecret == "" && method != AuthNone && rr.TokenEndpointAuthMethod == "":
		// Registered as a public client although a secret was asked for.
		method = AuthNone
	case rr.ClientSecret == "" && method != AuthNone:
		return Client{}, fail(CodeRegistrationFailed, nil, "dynamic client registration at %s gave method %s without a client_secret", safeURL(md.RegistrationEndpoint), method)
	case method != AuthBasic && method != AuthPost && method != AuthNone:
		return Client{}, fail(CodeRegistrationFailed, nil, "dynamic client registration at %s gave unsupported token endpoint auth method %q", safeURL(md.RegistrationEndpoint), truncate(method, 40))
	}
	return Client{ClientID: rr.ClientID, ClientSecret: secret.String(rr.ClientSecret), AuthMethod: method}, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
