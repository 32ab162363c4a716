package sdk

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/dromos-dev/dromos/internal/wwwauth"
)

// InsufficientScopeError is a resource server's refusal of a valid token
// that lacks scope (a 403 with error="insufficient_scope", RFC 6750 §3.1),
// as MCP servers send it when an operation needs more than the connection
// was granted. Scopes are the ones the server asks for: reconnect with them
// (step-up) to go on.
type InsufficientScopeError struct {
	Scopes []string
	// ResourceMetadata is the protected-resource metadata URL the
	// challenge named, if any.
	ResourceMetadata string
	// Description is the server's error_description, if any.
	Description string
}

func (e *InsufficientScopeError) Error() string {
	if len(e.Scopes) == 0 {
		return "dromos: the server refused the token: insufficient scope"
	}
	return "dromos: the server refused the token: insufficient scope; it asks for " + strings.Join(e.Scopes, " ")
}

// InsufficientScope reads an insufficient_scope refusal from resp (any
// other answer: nil, false). The body is left alone.
func InsufficientScope(resp *http.Response) (*InsufficientScopeError, bool) {
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		return nil, false
	}
	c, ok, err := wwwauth.Bearer(resp.Header.Values("WWW-Authenticate")...)
	if err != nil || !ok || c.Param("error") != "insufficient_scope" {
		return nil, false
	}
	return &InsufficientScopeError{Scopes: strings.Fields(c.Param("scope")),
		ResourceMetadata: c.Param("resource_metadata"), Description: c.Param("error_description")}, true
}

// AsInsufficientScope finds an *InsufficientScopeError in err's chain, as
// returned through MCPHTTPClient by the MCP Go SDK's calls.
func AsInsufficientScope(err error) (*InsufficientScopeError, bool) {
	var e *InsufficientScopeError
	ok := errors.As(err, &e)
	return e, ok
}

// MCPHTTPClient is HTTPClient for the MCP Go SDK's streamable transport
// (mcp.StreamableClientTransport{Endpoint: url, HTTPClient: c}): besides
// carrying and renewing the connection's token, it turns an
// insufficient_scope refusal into an *InsufficientScopeError returned by
// the request, so the SDK's call fails with it (find it with
// AsInsufficientScope) instead of a bare "Forbidden".
func (c *Client) MCPHTTPClient(ctx context.Context, connectionID string) *http.Client {
	hc := c.HTTPClient(ctx, connectionID)
	hc.Transport = scopeTransport{base: hc.Transport}
	return hc
}

type scopeTransport struct{ base http.RoundTripper }

func (t scopeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if e, ok := InsufficientScope(resp); ok {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return nil, e
	}
	return resp, nil
}
