package gateway_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
	"github.com/dromos-dev/dromos/internal/gateway"
)

// A proxy-only agent is refused token reads and refreshes over REST and
// gRPC before the broker hears of them; another agent is not.
func TestProxyOnlyAgentGetsNoToken(t *testing.T) {
	h := newHarness(t, func(c *gateway.Config) {
		clients, err := gateway.ParseClientKeys("agent-a:" + keyA + ";proxy-only,agent-b:" + keyB)
		if err != nil {
			t.Fatal(err)
		}
		c.Clients = clients
	})
	for _, r := range []struct{ method, path, template string }{
		{"GET", "/v1/token/" + someID, "/v1/token/{connection_id}"},
		{"POST", "/v1/refresh/" + someID, "/v1/refresh/{connection_id}"},
	} {
		res := h.call(r.method, r.path, r.template, bearer(keyA), "")
		if code, _ := res.envelope(t); res.status != http.StatusForbidden || code != "proxy_only" {
			t.Fatalf("%s %s: %d %s, want 403 proxy_only", r.method, r.path, res.status, res.body)
		}
	}
	client, _ := h.grpcClient()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := client.GetToken(withKey(ctx, keyA), &dromosv1.GetTokenRequest{ConnectionId: someID})
	wantStatus(t, err, codes.PermissionDenied, "proxy_only")
	_, err = client.RefreshToken(withKey(ctx, keyA), &dromosv1.RefreshTokenRequest{ConnectionId: someID})
	wantStatus(t, err, codes.PermissionDenied, "proxy_only")
	if n := h.fb.requests.Load(); n != 0 {
		t.Fatalf("refused calls reached the broker %d times", n)
	}
	// The other agent's read goes to the broker (which knows no such
	// connection).
	res := h.call("GET", "/v1/token/"+someID, "/v1/token/{connection_id}", bearer(keyB), "")
	if res.status != http.StatusNotFound {
		t.Fatalf("agent-b token read: %d %s", res.status, res.body)
	}
}
