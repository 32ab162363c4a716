package mcp

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/dromos-dev/dromos/internal/wwwauth"
)

// ProtocolVersion is the MCP revision the probe announces.
const ProtocolVersion = "2025-11-25"

// ResourceMetadata is the part of RFC 9728 protected-resource metadata
// the broker uses.
type ResourceMetadata struct {
	Resource             string   `json:"resource"`
	AuthorizationServers []string `json:"authorization_servers"`
	ScopesSupported      []string `json:"scopes_supported"`
}

// ServerMetadata is the part of RFC 8414 / OpenID discovery metadata the
// broker uses.
type ServerMetadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	RegistrationEndpoint              string   `json:"registration_endpoint,omitempty"`
	RevocationEndpoint                string   `json:"revocation_endpoint,omitempty"`
	ScopesSupported                   []string `json:"scopes_supported,omitempty"`
	GrantTypesSupported               []string `json:"grant_types_supported,omitempty"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported,omitempty"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	TokenEndpointAuthSigningAlgs      []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	ClientIDMetadataDocumentSupported bool     `json:"client_id_metadata_document_supported,omitempty"`
}

// SupportsGrant reports whether the server lists grant (RFC 8414's default
// is authorization_code and implicit).
func (m ServerMetadata) SupportsGrant(grant string) bool {
	if len(m.GrantTypesSupported) == 0 {
		return grant == "authorization_code"
	}
	return slices.Contains(m.GrantTypesSupported, grant)
}

// Discovery is what Discover learnt about an MCP server.
type Discovery struct {
	// ServerURL is the MCP server URL as given (normalised).
	ServerURL string
	// Resource is the RFC 8707 resource indicator to send: the metadata's
	// resource, or the server URL for a server without metadata.
	Resource string
	// ResourceMetadataURL is where the protected-resource metadata was
	// found ("" for a 2025-03-26 server without it).
	ResourceMetadataURL string
	ResourceMetadata    ResourceMetadata
	// ChallengeScopes are the scopes of the probe's WWW-Authenticate.
	ChallengeScopes []string
	// Issuer identifies the authorization server; clients are kept per
	// issuer.
	Issuer string
	Server ServerMetadata
	// Legacy is true when the 2025-03-26 fallback was used; DefaultEndpoints
	// when not even authorization server metadata existed.
	Legacy, DefaultEndpoints bool
}

// DefaultScopes are the scopes to request when the agent names none: the
// challenge's, else the metadata's scopes_supported, else none.
func (d Discovery) DefaultScopes() []string {
	if len(d.ChallengeScopes) > 0 {
		return slices.Clone(d.ChallengeScopes)
	}
	return slices.Clone(d.ResourceMetadata.ScopesSupported)
}

// CanonicalServerURL checks and normalises an MCP server URL: absolute
// http(s), no fragment, lower-case scheme and host, no trailing slash on a
// non-root path.
func CanonicalServerURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Opaque != "" {
		return "", fail(CodeInvalidURL, err, "mcp_server_url must be an absolute http(s) URL without credentials")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "", fail(CodeInvalidURL, nil, "mcp_server_url must not contain a fragment")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	if len(u.Path) > 1 {
		u.Path = strings.TrimSuffix(u.Path, "/")
		u.RawPath = ""
	}
	return u.String(), nil
}

// Discover runs discovery for the MCP server at serverURL.
func (d *Discoverer) Discover(ctx context.Context, serverURL string) (Discovery, error) {
	canon, err := CanonicalServerURL(serverURL)
	if err != nil {
		return Discovery{}, err
	}
	out := Discovery{ServerURL: canon}
	ch, err := d.probe(ctx, canon)
	if err != nil {
		return Discovery{}, err
	}
	if s := ch.Param("scope"); s != "" {
		out.ChallengeScopes = strings.Fields(s)
	}
	prmURL, prm, found, err := d.resourceMetadata(ctx, canon, ch.Param("resource_metadata"))
	if err != nil {
		return Discovery{}, err
	}
	if !found {
		return d.legacy(ctx, out)
	}
	if !ResourceMatches(prm.Resource, canon) {
		return Discovery{}, fail(CodeResourceMismatch, nil,
			"the protected-resource metadata names resource %q, which is not the MCP server %q; no authorization request was made",
			safeURL(prm.Resource), canon)
	}
	if len(prm.AuthorizationServers) == 0 {
		return Discovery{}, fail(CodeBadMetadata, nil, "the protected-resource metadata names no authorization server")
	}
	out.ResourceMetadataURL, out.ResourceMetadata, out.Resource = prmURL, prm, prm.Resource
	// The first authorization server listed is the one the resource
	// prefers; the specification leaves the choice to the client.
	issuer := prm.AuthorizationServers[0]
	md, found, err := d.ServerMetadata(ctx, issuer)
	if err != nil {
		return Discovery{}, err
	}
	if !found {
		return Discovery{}, fail(CodeBadMetadata, nil, "authorization server %s publishes no RFC 8414 or OpenID metadata", safeURL(issuer))
	}
	out.Issuer, out.Server = issuer, md
	if err := checkServer(out); err != nil {
		return Discovery{}, err
	}
	return out, d.guardEndpoints(ctx, md)
}

// guardEndpoints checks the back-channel endpoints of the authorization
// server now, so a server pointing the broker at an internal address is
// refused before any client is registered or stored.
func (d *Discoverer) guardEndpoints(ctx context.Context, md ServerMetadata) error {
	for _, u := range []string{md.TokenEndpoint, md.RegistrationEndpoint, md.RevocationEndpoint} {
		if u == "" {
			continue
		}
		if err := d.guard(ctx, u); err != nil {
			return guardErr(u, err)
		}
	}
	return nil
}

// probe sends an unauthenticated initialize and returns the Bearer
// challenge of a 401; when initialize is let through, an unauthenticated
// ping's (the zero Challenge when neither is challenged).
func (d *Discoverer) probe(ctx context.Context, serverURL string) (wwwauth.Challenge, error) {
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` + ProtocolVersion +
		`","capabilities":{},"clientInfo":{"name":"dromos","version":"1"}}}`)
	r, err := d.do(ctx, http.MethodPost, serverURL, body, http.Header{
		"Content-Type":         {"application/json"},
		"Accept":               {"application/json, text/event-stream"},
		"Mcp-Protocol-Version": {ProtocolVersion},
	})
	if err != nil {
		return wwwauth.Challenge{}, err
	}
	if r.status != http.StatusUnauthorized && r.status != http.StatusForbidden {
		// Some servers let initialize through and challenge the requests
		// after it: a ping, which changes nothing, shows their challenge.
		body = []byte(`{"jsonrpc":"2.0","id":2,"method":"ping"}`)
		if r, err = d.do(ctx, http.MethodPost, serverURL, body, http.Header{
			"Content-Type":         {"application/json"},
			"Accept":               {"application/json, text/event-stream"},
			"Mcp-Protocol-Version": {ProtocolVersion},
		}); err != nil {
			return wwwauth.Challenge{}, err
		}
		if r.status != http.StatusUnauthorized && r.status != http.StatusForbidden {
			return wwwauth.Challenge{}, nil
		}
	}
	c, _, err := wwwauth.Bearer(r.header.Values("WWW-Authenticate")...)
	if err != nil {
		// A garbled challenge is no reason to give up: the well-known
		// locations may still have the metadata.
		return wwwauth.Challenge{}, nil
	}
	return c, nil
}

// WellKnownResourceURLs are the RFC 9728 locations for serverURL in the
// order the MCP specification tries them: path-specific, then root.
func WellKnownResourceURLs(serverURL string) []string {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil
	}
	root := u.Scheme + "://" + u.Host + "/.well-known/oauth-protected-resource"
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	if p == "" {
		return []string{root}
	}
	return []string{root + p, root}
}

func (d *Discoverer) resourceMetadata(ctx context.Context, serverURL, fromChallenge string) (string, ResourceMetadata, bool, error) {
	candidates := WellKnownResourceURLs(serverURL)
	if fromChallenge != "" {
		candidates = []string{fromChallenge}
	}
	for _, c := range candidates {
		var m ResourceMetadata
		found, err := d.getJSON(ctx, c, &m)
		if err != nil {
			return "", ResourceMetadata{}, false, err
		}
		if found {
			if m.Resource == "" {
				return "", ResourceMetadata{}, false, fail(CodeBadMetadata, nil, "the protected-resource metadata at %s has no resource", safeURL(c))
			}
			return c, m, true, nil
		}
	}
	if fromChallenge != "" {
		return "", ResourceMetadata{}, false, fail(CodeBadMetadata, nil, "the resource_metadata URL of the challenge (%s) answered 404", safeURL(fromChallenge))
	}
	return "", ResourceMetadata{}, false, nil
}

// ResourceMatches reports whether the metadata's resource identifies the
// server: same scheme, host and port, and a path equal to the server's or
// a parent of it on a segment boundary (a resource may cover several
// endpoints).
func ResourceMatches(resource, serverURL string) bool {
	r, err1 := url.Parse(resource)
	s, err2 := url.Parse(serverURL)
	if err1 != nil || err2 != nil || r.Fragment != "" || r.User != nil {
		return false
	}
	if !strings.EqualFold(r.Scheme, s.Scheme) || !strings.EqualFold(r.Host, s.Host) {
		return false
	}
	rp, sp := strings.TrimSuffix(r.Path, "/"), strings.TrimSuffix(s.Path, "/")
	return rp == sp || strings.HasPrefix(sp, rp+"/")
}

// ServerMetadataURLs are the metadata locations of an issuer in the MCP
// specification's order: RFC 8414 with path insertion, OpenID discovery
// with path insertion, OpenID discovery with the path appended (an issuer
// without path: RFC 8414, then OpenID).
func ServerMetadataURLs(issuer string) []string {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return nil
	}
	origin := u.Scheme + "://" + u.Host
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	if p == "" {
		return []string{origin + "/.well-known/oauth-authorization-server", origin + "/.well-known/openid-configuration"}
	}
	return []string{
		origin + "/.well-known/oauth-authorization-server" + p,
		origin + "/.well-known/openid-configuration" + p,
		origin + p + "/.well-known/openid-configuration",
	}
}

// ServerMetadata fetches an authorization server's metadata; found is
// false when no location had any.
func (d *Discoverer) ServerMetadata(ctx context.Context, issuer string) (ServerMetadata, bool, error) {
	urls := ServerMetadataURLs(issuer)
	if urls == nil {
		return ServerMetadata{}, false, fail(CodeBadMetadata, nil, "authorization server %q is not a URL", safeURL(issuer))
	}
	for _, c := range urls {
		var m ServerMetadata
		found, err := d.getJSON(ctx, c, &m)
		if err != nil {
			return ServerMetadata{}, false, err
		}
		if !found {
			continue
		}
		if m.Issuer != "" && !sameIssuerHost(m.Issuer, issuer) {
			return ServerMetadata{}, false, fail(CodeBadMetadata, nil, "the metadata at %s names issuer %q, not %q", safeURL(c), safeURL(m.Issuer), safeURL(issuer))
		}
		return m, true, nil
	}
	return ServerMetadata{}, false, nil
}

// sameIssuerHost accepts metadata whose issuer is on the issuer's origin.
// RFC 8414 asks for the exact issuer, but deployed servers (and the MCP
// conformance suite's) publish tenant metadata naming the bare origin;
// what matters here is that a server cannot speak for another host.
func sameIssuerHost(got, want string) bool {
	g, err1 := url.Parse(got)
	w, err2 := url.Parse(want)
	return err1 == nil && err2 == nil && strings.EqualFold(g.Scheme, w.Scheme) && strings.EqualFold(g.Host, w.Host)
}

// legacy is the 2025-03-26 discovery: the authorization server is the MCP
// server's origin; without metadata there, its default endpoints.
func (d *Discoverer) legacy(ctx context.Context, out Discovery) (Discovery, error) {
	u, _ := url.Parse(out.ServerURL)
	origin := u.Scheme + "://" + u.Host
	out.Legacy, out.Resource, out.Issuer = true, out.ServerURL, origin
	md, found, err := d.ServerMetadata(ctx, origin)
	if err != nil {
		return Discovery{}, err
	}
	if !found {
		out.DefaultEndpoints = true
		md = ServerMetadata{Issuer: origin, AuthorizationEndpoint: origin + "/authorize", TokenEndpoint: origin + "/token",
			RegistrationEndpoint: origin + "/register", CodeChallengeMethodsSupported: []string{"S256"}}
	}
	out.Server = md
	if err := checkServer(out); err != nil {
		return Discovery{}, err
	}
	return out, d.guardEndpoints(ctx, md)
}

// checkServer refuses what the broker cannot use safely.
func checkServer(d Discovery) error {
	md := d.Server
	if !slices.Contains(md.CodeChallengeMethodsSupported, "S256") {
		return fail(CodeNoS256, nil, "authorization server %s does not advertise PKCE S256 (code_challenge_methods_supported); the broker refuses to authorize without it", safeURL(d.Issuer))
	}
	if md.TokenEndpoint == "" {
		return fail(CodeBadMetadata, nil, "authorization server %s has no token_endpoint", safeURL(d.Issuer))
	}
	if md.AuthorizationEndpoint == "" && !md.SupportsGrant("client_credentials") {
		return fail(CodeBadMetadata, nil, "authorization server %s has no authorization_endpoint", safeURL(d.Issuer))
	}
	return nil
}
