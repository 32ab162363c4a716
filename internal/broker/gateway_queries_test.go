package broker_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
	"github.com/dromos-dev/dromos/sdk"
)

const otherAgentKey = "other-agent-key-0001"

type listedPage struct {
	Connections []struct {
		ConnectionID string `json:"connection_id"`
		Status       string `json:"status"`
	} `json:"connections"`
	NextCursor string `json:"next_cursor"`
}

// listAll pages through GET /v1/connections as key with the query q.
func (s *stack) listAll(t *testing.T, key string, q url.Values) []string {
	t.Helper()
	var ids []string
	for range 50 {
		var p listedPage
		if st := s.rest(t, "GET", "/v1/connections?"+q.Encode(), "/v1/connections", key, nil, &p); st != 200 {
			t.Fatalf("list %s: %d", q.Encode(), st)
		}
		for _, c := range p.Connections {
			ids = append(ids, c.ConnectionID)
		}
		if p.NextCursor == "" {
			return ids
		}
		q.Set("cursor", p.NextCursor)
	}
	t.Fatal("paging did not end")
	return nil
}

// TestGatewayListConnections lists through the gateway and a real broker:
// an agent sees its own connections only, whatever the filters, cursor
// pages cover more rows than one page holds, and GET /v1/connections/{id}
// is check-connection with the record.
func TestGatewayListConnections(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL)
		request := func(key, user string) string {
			t.Helper()
			var grant map[string]any
			if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", key, map[string]any{
				"user_id": user, "provider_name": "example", "scopes": []string{"openid"}, "return_url": s.retURL}, &grant); st != 200 {
				t.Fatalf("request-connection %d %v", st, grant)
			}
			return grant["connection_id"].(string)
		}
		var aliceA, bobA, aliceB []string
		for range 5 {
			aliceA = append(aliceA, request(agentKey, "alice"))
			aliceB = append(aliceB, request(otherAgentKey, "alice"))
		}
		bobA = append(bobA, request(agentKey, "bob"))
		// The harness clock stands still: the order is the ids'.
		slices.Sort(aliceA)
		slices.Sort(aliceB)
		allA := slices.Sorted(slices.Values(append(slices.Clone(aliceA), bobA...)))

		if got := s.listAll(t, agentKey, url.Values{"limit": {"2"}}); !slices.Equal(got, allA) {
			t.Fatalf("agent A, pages of 2 = %q, want %q", got, allA)
		}
		if got := s.listAll(t, agentKey, url.Values{"user_id": {"alice"}, "limit": {"3"}}); !slices.Equal(got, aliceA) {
			t.Fatalf("agent A alice = %q, want %q", got, aliceA)
		}
		if got := s.listAll(t, otherAgentKey, url.Values{"user_id": {"alice"}, "provider_name": {"example"}, "status": {"pending"}}); !slices.Equal(got, aliceB) {
			t.Fatalf("agent B alice = %q, want %q", got, aliceB)
		}
		// Agent B never sees agent A's rows, whatever it filters on.
		for _, q := range []url.Values{{}, {"user_id": {"bob"}}, {"status": {"active"}}, {"provider_name": {"example"}, "limit": {"1"}}} {
			for _, id := range s.listAll(t, otherAgentKey, q) {
				if slices.Contains(allA, id) {
					t.Fatalf("agent B listed agent A's %s with %v", id, q)
				}
			}
		}
		if got := s.listAll(t, agentKey, url.Values{"status": {"failed"}}); len(got) != 0 {
			t.Fatalf("failed = %q, want none", got)
		}
		if got := s.listAll(t, agentKey, url.Values{"provider_name": {"nope"}}); len(got) != 0 {
			t.Fatalf("unknown provider = %q, want none", got)
		}

		// A cursor agent A got places agent B's listing but never widens it.
		var p listedPage
		s.rest(t, "GET", "/v1/connections?limit=1", "/v1/connections", agentKey, nil, &p)
		if p.NextCursor == "" {
			t.Fatal("no next_cursor with more rows than the limit")
		}
		for _, id := range s.listAll(t, otherAgentKey, url.Values{"cursor": {p.NextCursor}}) {
			if slices.Contains(allA, id) {
				t.Fatalf("agent B listed agent A's %s with A's cursor", id)
			}
		}

		for name, q := range map[string]string{
			"status":        "status=done",
			"limit zero":    "limit=0",
			"limit too big": "limit=201",
			"limit text":    "limit=ten",
			"cursor":        "cursor=bm90LWEtY3Vyc29y",
		} {
			var env map[string]any
			if st := s.rest(t, "GET", "/v1/connections?"+q, "/v1/connections", agentKey, nil, &env); st != 400 || env["code"] != "bad_request" {
				t.Errorf("%s: %d %v, want 400 bad_request", name, st, env)
			}
		}

		var rec map[string]any
		if st := s.rest(t, "GET", "/v1/connections/"+bobA[0], "/v1/connections/{connection_id}", agentKey, nil, &rec); st != 200 {
			t.Fatalf("get own: %d %v", st, rec)
		}
		if rec["connection_id"] != bobA[0] || rec["status"] != "pending" || rec["user_id"] != "bob" ||
			rec["provider_name"] != "example" || rec["created_at"] == nil || rec["updated_at"] == nil {
			t.Fatalf("record %v", rec)
		}
		if sc, _ := rec["scopes"].([]any); len(sc) == 0 {
			t.Fatalf("record without scopes: %v", rec)
		}
		var env map[string]any
		if st := s.rest(t, "GET", "/v1/connections/"+bobA[0], "/v1/connections/{connection_id}", otherAgentKey, nil, &env); st != 404 {
			t.Fatalf("other agent's id: %d %v", st, env)
		}

		// The SDK reads the same pages and records.
		cl, err := sdk.New(s.gwURL, sdk.WithAPIKey(agentKey))
		if err != nil {
			t.Fatal(err)
		}
		var viaSDK []string
		in := sdk.ListConnectionsInput{UserID: "alice", ProviderName: "example", Status: sdk.StatusPending, Limit: 2}
		for range 10 {
			page, err := cl.ListConnections(t.Context(), in)
			if err != nil {
				t.Fatal(err)
			}
			for _, lc := range page.Connections {
				if lc.Status.Status != sdk.StatusPending {
					t.Fatalf("SDK item %+v", lc)
				}
				viaSDK = append(viaSDK, lc.ConnectionID)
			}
			if in.Cursor = page.NextCursor; in.Cursor == "" {
				break
			}
		}
		if !slices.Equal(viaSDK, aliceA) {
			t.Fatalf("SDK listing = %q, want %q", viaSDK, aliceA)
		}
		if _, err := cl.ListConnections(t.Context(), sdk.ListConnectionsInput{Limit: 500}); !isAPIError(err, 400) {
			t.Fatalf("SDK limit 500: %v", err)
		}
		r, err := cl.GetConnection(t.Context(), bobA[0])
		if err != nil || r.ConnectionID != bobA[0] || r.UserID != "bob" || r.ProviderName != "example" ||
			r.Status.Status != sdk.StatusPending || r.CreatedAt.IsZero() || len(r.Scopes) == 0 || !r.LastRefreshAt.IsZero() {
			t.Fatalf("SDK GetConnection = %+v, %v", r, err)
		}
		other, err := sdk.New(s.gwURL, sdk.WithAPIKey(otherAgentKey))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.GetConnection(t.Context(), bobA[0]); !isAPIError(err, 404) {
			t.Fatalf("SDK GetConnection of another agent's id: %v", err)
		}

		// gRPC answers the same.
		ctxA := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+agentKey)
		ctxB := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+otherAgentKey)
		var viaGRPC []string
		req := &dromosv1.ListConnectionsRequest{Limit: 4}
		for range 10 {
			page, err := s.grpc.ListConnections(ctxA, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, lc := range page.GetConnections() {
				if lc.GetConnection().GetStatus() != dromosv1.ConnectionStatus_CONNECTION_STATUS_PENDING {
					t.Fatalf("gRPC item %v", lc)
				}
				viaGRPC = append(viaGRPC, lc.GetConnectionId())
			}
			if req.Cursor = page.GetNextCursor(); req.Cursor == "" {
				break
			}
		}
		if !slices.Equal(viaGRPC, allA) {
			t.Fatalf("gRPC listing = %q, want %q", viaGRPC, allA)
		}
		pageB, err := s.grpc.ListConnections(ctxB, &dromosv1.ListConnectionsRequest{UserId: "bob"})
		if err != nil || len(pageB.GetConnections()) != 0 {
			t.Fatalf("gRPC agent B bob = %v, %v; want none", pageB, err)
		}
		if _, err := s.grpc.ListConnections(ctxA, &dromosv1.ListConnectionsRequest{Status: "done"}); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("gRPC unknown status: %v", err)
		}
		g, err := s.grpc.GetConnection(ctxA, &dromosv1.GetConnectionRequest{ConnectionId: bobA[0]})
		if err != nil || g.GetUserId() != "bob" || g.GetProviderName() != "example" || g.GetCreatedAt() == nil || len(g.GetScopes()) == 0 {
			t.Fatalf("gRPC GetConnection = %v, %v", g, err)
		}
		if _, err := s.grpc.GetConnection(ctxB, &dromosv1.GetConnectionRequest{ConnectionId: bobA[0]}); status.Code(err) != codes.NotFound {
			t.Fatalf("gRPC GetConnection of another agent's id: %v", err)
		}
	})
}

func isAPIError(err error, status int) bool {
	var e *sdk.APIError
	return errors.As(err, &e) && e.Status == status
}
