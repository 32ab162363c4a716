package sdk

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestMCPHTTPClientWithTheMCPSDK runs the official MCP Go SDK's streamable
// client over MCPHTTPClient against a server that wants a bearer token and
// refuses tools/call for lack of scope.
func TestMCPHTTPClientWithTheMCPSDK(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	gw := newFakeGateway(t, map[string]http.HandlerFunc{
		"GET /v1/token/{id}": func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, tokenAnswer("tok-1", exp)) },
	})
	server := mcp.NewServer(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "write"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ map[string]any) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil, nil
	})
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
	var bearers []string
	srv := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		bearers = append(bearers, r.Header.Get("Authorization"))
		if r.Header.Get("Authorization") != "Bearer tok-1" {
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="https://x/.well-known/oauth-protected-resource"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if strings.Contains(r.URL.RawQuery, "deny") {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="files:read files:write", error_description="write needs files:write"`)
			w.WriteHeader(http.StatusForbidden)
			return
		}
		handler.ServeHTTP(w, r)
	})
	c, err := New(gw.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL, HTTPClient: c.MCPHTTPClient(ctx, "11111111-2222-3333-4444-555555555555"),
		DisableStandaloneSSE: true, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("initialize over MCPHTTPClient: %v", err)
	}
	defer session.Close()
	tools, err := session.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) != 1 {
		t.Fatalf("tools/list: %+v, %v", tools, err)
	}
	if slices.ContainsFunc(bearers, func(b string) bool { return b != "Bearer tok-1" }) {
		t.Fatalf("requests without the connection's token: %q", bearers)
	}
	// A refusal for lack of scope comes back typed through the MCP SDK.
	denied := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	_, err = denied.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL + "?deny=1", HTTPClient: c.MCPHTTPClient(ctx, "11111111-2222-3333-4444-555555555555"),
		DisableStandaloneSSE: true, MaxRetries: -1}, nil)
	e, ok := AsInsufficientScope(err)
	if !ok || !slices.Equal(e.Scopes, []string{"files:read", "files:write"}) || e.Description != "write needs files:write" {
		t.Fatalf("insufficient scope through the MCP SDK: %v (%+v)", err, e)
	}
}

func TestInsufficientScope(t *testing.T) {
	mk := func(status int, h string) *http.Response {
		r := &http.Response{StatusCode: status, Header: http.Header{}}
		if h != "" {
			r.Header.Set("WWW-Authenticate", h)
		}
		return r
	}
	if e, ok := InsufficientScope(mk(403, `Bearer error="insufficient_scope", scope="a b"`)); !ok || !slices.Equal(e.Scopes, []string{"a", "b"}) {
		t.Fatalf("403 insufficient_scope: %+v %v", e, ok)
	}
	for _, r := range []*http.Response{nil, mk(401, `Bearer error="insufficient_scope", scope="a"`), mk(403, `Bearer error="invalid_token"`),
		mk(403, ""), mk(403, `Bearer scope="unterminated`)} {
		if e, ok := InsufficientScope(r); ok {
			t.Fatalf("not an insufficient_scope refusal, read as %+v", e)
		}
	}
}
