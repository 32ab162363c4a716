package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
)

// TestLogsHoldNoSecrets runs full flows at debug level, failures included,
// and looks for every secret in what was logged.
func TestLogsHoldNoSecrets(t *testing.T) {
	h := newHarness(t)
	id, st := h.requestConnection(keyA)
	h.fb.set(id, "active", "", activeToken("at-SECRET-L"))
	h.call("GET", "/v1/check-connection/"+id, "/v1/check-connection/{connection_id}", bearer(keyA), "")
	h.call("GET", "/v1/token/"+id, "/v1/token/{connection_id}", bearer(keyA), "")
	h.call("POST", "/v1/refresh/"+id, "/v1/refresh/{connection_id}", map[string]string{"X-API-Key": keyA}, "")
	h.call("GET", "/v1/token/"+id, "/v1/token/{connection_id}", bearer(keyB), "")
	h.call("GET", "/v1/token/"+id, "/v1/token/{connection_id}", bearer("wrong-SECRET-4444"), "")

	client, _ := h.grpcClient()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctxA := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+keyA)
	grant, err := client.RequestConnection(ctxA, &dromosv1.RequestConnectionRequest{
		UserId: "u", ProviderName: "google", Scopes: []string{"openid"}, ReturnUrl: "https://a.example/"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.GetToken(ctxA, &dromosv1.GetTokenRequest{ConnectionId: id}); err != nil {
		t.Fatal(err)
	}

	// Broker failures log their causes; the token the broker sent back
	// inside a failing answer must not be among them.
	h.fb.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"access_token":"at-SECRET-in-500"}`))
		return true
	})
	h.call("GET", "/v1/token/"+id, "/v1/token/{connection_id}", bearer(keyA), "")
	h.fb.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		_, _ = w.Write([]byte(`{"access_token":"at-SECRET-bad","token_type":7}`))
		return true
	})
	h.call("GET", "/v1/token/"+id, "/v1/token/{connection_id}", bearer(keyA), "")

	logs := h.logs.String()
	if !strings.Contains(logs, id) || !strings.Contains(logs, `"level":"DEBUG"`) || !strings.Contains(logs, "broker get_token") {
		t.Fatalf("the flow was not logged at debug level, so this test proves nothing:\n%s", logs)
	}
	for _, secret := range []string{
		"at-SECRET", "idt-SECRET", keyA, keyB, brokerKey, "wrong-SECRET", st, grant.GetState(),
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
}
