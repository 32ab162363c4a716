package broker_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
	"github.com/dromos-dev/dromos/internal/storage"
)

// TestAllowedScopesRefuseConsent: a provider registered with
// allowed_scopes refuses, with 400 scope_not_allowed naming the scopes,
// a consent (through the gateway and the broker's own API) or a step-up
// asking for anything else; nothing is stored and no authUrl is given.
// Allowed scopes, exact or by prefix, still get their consent.
func TestAllowedScopesRefuseConsent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL)
		s.h.registerProvider(map[string]any{"name": "limited", "issuer": s.op.Issuer, "enable_discovery": true,
			"client_id": s.op.ClientID, "client_secret": s.op.ClientSecret,
			"allowed_scopes": []string{"openid", "offline_access", "email", "api:read*"}})
		ctx := context.Background()
		countConns := func() int {
			t.Helper()
			all, err := s.h.store.ListConnections(ctx, storage.ConnectionFilter{})
			if err != nil {
				t.Fatal(err)
			}
			return len(all)
		}
		ask := func(scopes []string, connID string) (int, map[string]any) {
			t.Helper()
			var out map[string]any
			body := map[string]any{"user_id": "alice", "provider_name": "limited", "scopes": scopes, "return_url": s.retURL}
			if connID != "" {
				body["connection_id"] = connID
			}
			st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, body, &out)
			return st, out
		}
		refused := func(st int, out map[string]any, named ...string) {
			t.Helper()
			msg, _ := out["message"].(string)
			if st != http.StatusBadRequest || out["code"] != "scope_not_allowed" || out["authUrl"] != nil {
				t.Fatalf("got %d %v, want 400 scope_not_allowed", st, out)
			}
			for _, n := range named {
				if !strings.Contains(msg, `"`+n+`"`) {
					t.Fatalf("message %q does not name %q", msg, n)
				}
			}
		}

		st, out := ask([]string{"openid", "admin:org", "repo:delete"}, "")
		refused(st, out, "admin:org", "repo:delete")
		if strings.Contains(out["message"].(string), `"openid"`) {
			t.Fatalf("message names an allowed scope: %v", out["message"])
		}
		// The broker's consent API answers the same.
		var env envelope
		if st := s.h.do("POST", "/auth/consent-spec", map[string]any{"workspace_id": "ws-1", "provider_name": "limited",
			"scopes": []string{"api:write"}, "return_url": s.retURL}, &env); st != http.StatusBadRequest || env.Code != "scope_not_allowed" {
			t.Fatalf("consent-spec: %d %+v", st, env)
		}
		// And over gRPC: InvalidArgument, the code in the status message.
		gctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+agentKey)
		_, err := s.grpc.RequestConnection(gctx, &dromosv1.RequestConnectionRequest{UserId: "bob", ProviderName: "limited",
			Scopes: []string{"admin:org"}, ReturnUrl: s.retURL})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `scope_not_allowed: provider "limited" does not allow scope "admin:org"`) {
			t.Fatalf("gRPC: %v", err)
		}
		if n := countConns(); n != 0 {
			t.Fatalf("%d connections stored by refused consents", n)
		}

		// Inside the list (a prefix entry included): a consent as usual.
		st, grant := ask([]string{"openid", "offline_access", "api:read.repos"}, "")
		if st != http.StatusOK || grant["authUrl"] == nil {
			t.Fatalf("allowed scopes: %d %v", st, grant)
		}
		id := grant["connection_id"].(string)
		if q := s.consentAtOP(t, grant["authUrl"].(string)); q.Get("status") != "success" {
			t.Fatalf("consent landed with %v", q)
		}

		// A step-up is held to the same list, and leaves no step-up behind.
		st, out = ask([]string{"profile"}, id)
		refused(st, out, "profile")
		if _, err := s.h.store.LatestStepUp(ctx, id); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("refused step-up stored something: %v", err)
		}
		if st, out := ask([]string{"email"}, id); st != http.StatusOK {
			t.Fatalf("allowed step-up: %d %v", st, out)
		}
		// Providers without allowed_scopes keep today's behaviour.
		var free map[string]any
		if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
			"user_id": "alice", "provider_name": "example", "scopes": []string{"openid", "admin:org"}, "return_url": s.retURL}, &free); st != http.StatusOK {
			t.Fatalf("provider without allowlist: %d %v", st, free)
		}
	})
}
