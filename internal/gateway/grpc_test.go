package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
)

func withKey(ctx context.Context, key string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
}

// wantStatus checks a gRPC error's code and the contract code it carries.
func wantStatus(t *testing.T, err error, code codes.Code, contract string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code || !strings.HasPrefix(st.Message(), contract+": ") {
		t.Fatalf("got %v, want %s with %q", err, code, contract)
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == contract && info.GetDomain() == "dromos.dev" {
			return
		}
	}
	t.Fatalf("no ErrorInfo with reason %q in %v", contract, st.Details())
}

func TestGRPCFlow(t *testing.T) {
	h := newHarness(t)
	client, _ := h.grpcClient()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctxA := metadata.AppendToOutgoingContext(withKey(ctx, keyA), "x-request-id", "grpc-req-1")

	var hdr metadata.MD
	grant, err := client.RequestConnection(ctxA, &dromosv1.RequestConnectionRequest{
		UserId: "u-42", ProviderName: "google", Scopes: []string{"openid"},
		ReturnUrl: "https://app.example.com/done", Metadata: map[string]string{"k": "v"},
	}, grpc.Header(&hdr))
	if err != nil {
		t.Fatal(err)
	}
	if got := hdr.Get("x-request-id"); len(got) != 1 || got[0] != "grpc-req-1" {
		t.Fatalf("request id header %v", got)
	}
	seen := h.fb.lastSeen()
	if seen.requestID != "grpc-req-1" || seen.body["workspace_id"] != "agent-a" || seen.body["client_name"] != "agent-a" {
		t.Fatalf("broker saw %+v", seen)
	}
	id := grant.GetConnectionId()
	if grant.GetAuthUrl() == "" || grant.GetState() == "" || grant.GetProviderId() != "prov-1" || len(grant.GetScopes()) != 1 {
		t.Fatalf("grant %v", grant)
	}

	st, err := client.CheckConnection(ctxA, &dromosv1.CheckConnectionRequest{ConnectionId: id})
	if err != nil || st.GetStatus() != dromosv1.ConnectionStatus_CONNECTION_STATUS_PENDING {
		t.Fatalf("check: %v %v", st, err)
	}
	_, err = client.GetToken(ctxA, &dromosv1.GetTokenRequest{ConnectionId: id})
	wantStatus(t, err, codes.FailedPrecondition, "not_ready")

	h.fb.set(id, "active", "", activeToken("at-SECRET-G"))
	st, err = client.CheckConnection(ctxA, &dromosv1.CheckConnectionRequest{ConnectionId: id})
	if err != nil || st.GetStatus() != dromosv1.ConnectionStatus_CONNECTION_STATUS_ACTIVE || st.GetDetail() != "" {
		t.Fatalf("check: %v %v", st, err)
	}
	for name, get := range map[string]func() (*dromosv1.Token, error){
		"GetToken": func() (*dromosv1.Token, error) {
			return client.GetToken(ctxA, &dromosv1.GetTokenRequest{ConnectionId: id})
		},
		"RefreshToken": func() (*dromosv1.Token, error) {
			return client.RefreshToken(ctxA, &dromosv1.RefreshTokenRequest{ConnectionId: id})
		},
	} {
		tok, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if tok.GetAccessToken() != "at-SECRET-G" || tok.GetTokenType() != "Bearer" || tok.GetExpiresIn() != 3599 ||
			!tok.GetExpiresAt().AsTime().Equal(time.Date(2030, 1, 1, 1, 0, 0, 0, time.UTC)) || tok.GetScope() != "openid email" ||
			tok.GetIdToken() != "idt-SECRET-at-SECRET-G" || tok.GetProvider() != "google" {
			t.Fatalf("%s: %v", name, tok)
		}
		wantExtras := map[string]string{"tenant": "contoso", "ext_expires_in": "3599", "flags": `{"a":true}`}
		if len(tok.GetExtras()) != len(wantExtras) {
			t.Fatalf("%s extras %v", name, tok.GetExtras())
		}
		for k, v := range wantExtras {
			if tok.GetExtras()[k] != v {
				t.Fatalf("%s extra %s = %q, want %q", name, k, tok.GetExtras()[k], v)
			}
		}
	}

	ps, err := client.ListProviders(ctxA, &dromosv1.ListProvidersRequest{})
	if err != nil || len(ps.GetProviders()) != 1 || ps.GetProviders()[0].GetName() != "google" || ps.GetProviders()[0].GetDisplayName() != "Google" {
		t.Fatalf("providers %v %v", ps, err)
	}

	// Another client, authenticated with x-api-key, sees nothing.
	ctxB := metadata.AppendToOutgoingContext(ctx, "x-api-key", keyB)
	_, err = client.GetToken(ctxB, &dromosv1.GetTokenRequest{ConnectionId: id})
	wantStatus(t, err, codes.NotFound, "not_found")
	_, err = client.CheckConnection(ctxB, &dromosv1.CheckConnectionRequest{ConnectionId: id})
	wantStatus(t, err, codes.NotFound, "not_found")

	h.fb.set(id, "revoked", "", nil)
	_, err = client.GetToken(ctxA, &dromosv1.GetTokenRequest{ConnectionId: id})
	wantStatus(t, err, codes.FailedPrecondition, "reauth_required")
	st, err = client.CheckConnection(ctxA, &dromosv1.CheckConnectionRequest{ConnectionId: id})
	if err != nil || st.GetStatus() != dromosv1.ConnectionStatus_CONNECTION_STATUS_FAILED || st.GetDetail() != "revoked" {
		t.Fatalf("check: %v %v", st, err)
	}
}

func TestGRPCErrors(t *testing.T) {
	h := newHarness(t)
	client, _ := h.grpcClient()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
	}{
		{"no key", ctx},
		{"wrong key", withKey(ctx, "not-a-key")},
		{"wrong x-api-key", metadata.AppendToOutgoingContext(ctx, "x-api-key", "not-a-key")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.GetToken(tc.ctx, &dromosv1.GetTokenRequest{ConnectionId: someID})
			wantStatus(t, err, codes.Unauthenticated, "unauthorized")
			_, err = client.ListProviders(tc.ctx, &dromosv1.ListProvidersRequest{})
			wantStatus(t, err, codes.Unauthenticated, "unauthorized")
			_, err = client.RequestConnection(tc.ctx, &dromosv1.RequestConnectionRequest{
				UserId: "u", ProviderName: "google", Scopes: []string{"openid"}, ReturnUrl: "https://a.example/"})
			wantStatus(t, err, codes.Unauthenticated, "unauthorized")
		})
	}
	ctxA := withKey(ctx, keyA)
	for _, id := range []string{"", "../providers", strings.ToUpper(someID), someID + "/x"} {
		_, err := client.GetToken(ctxA, &dromosv1.GetTokenRequest{ConnectionId: id})
		wantStatus(t, err, codes.InvalidArgument, "bad_request")
	}
	_, err := client.RequestConnection(ctxA, &dromosv1.RequestConnectionRequest{
		UserId: "u", ProviderName: "google", ReturnUrl: "https://a.example/"})
	wantStatus(t, err, codes.InvalidArgument, "bad_request")
	_, err = client.RequestConnection(ctxA, &dromosv1.RequestConnectionRequest{
		UserId: "u", ProviderName: "google", Scopes: []string{"openid"}, ReturnUrl: "https://a.example/",
		Metadata: map[string]string{"k": strings.Repeat("a", 70<<10)}})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized request: %v", err)
	}
	if n := h.fb.requests.Load(); n != 0 {
		t.Fatalf("rejected calls reached the broker %d times", n)
	}

	h.fb.setIntercept(func(w http.ResponseWriter, _ *http.Request) bool {
		w.Header().Set("Retry-After", "4")
		writeEnvelope(w, 503, "unavailable", "database unavailable")
		return true
	})
	_, err = client.GetToken(ctxA, &dromosv1.GetTokenRequest{ConnectionId: someID})
	wantStatus(t, err, codes.Unavailable, "unavailable")
	st, _ := status.FromError(err)
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if retry == nil || retry.GetRetryDelay().AsDuration() != 4*time.Second {
		t.Fatalf("retry info %v", retry)
	}

	h.fb.setIntercept(func(w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(500)
		return true
	})
	_, err = client.GetToken(ctxA, &dromosv1.GetTokenRequest{ConnectionId: someID})
	wantStatus(t, err, codes.Internal, "broker_error")
}

func TestGRPCHealthAndReflection(t *testing.T) {
	h := newHarness(t)
	_, conn := h.grpcClient()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, svc := range []string{"", "dromos.v1.Gateway"} {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health %q: %v %v", svc, resp, err)
		}
	}
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if joined := strings.Join(names, ","); !strings.Contains(joined, "dromos.v1.Gateway") || !strings.Contains(joined, "grpc.health.v1.Health") {
		t.Fatalf("reflection lists %v", names)
	}
	_ = stream.CloseSend()
}

func TestGRPCAmbiguousCredentials(t *testing.T) {
	h := newHarness(t)
	client, conn := h.grpcClient()
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+keyA, "x-api-key", keyB)
	if _, err := client.ListProviders(ctx, &dromosv1.ListProvidersRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("gRPC with two keys: %v", err)
	}
	ctx = metadata.AppendToOutgoingContext(context.Background(), "x-api-key", keyA, "x-api-key", keyA)
	if _, err := client.ListProviders(ctx, &dromosv1.ListProvidersRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("gRPC with x-api-key twice: %v", err)
	}
	if _, err := client.ListProviders(withKey(context.Background(), keyA), &dromosv1.ListProvidersRequest{}); err != nil {
		t.Fatalf("one key: %v", err)
	}
}
