package localbroker_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/gateway/brokerclient"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/localbroker"
	"github.com/dromos-dev/dromos/internal/logging"
)

// fakeBroker answers token reads as Go values and everything else with a
// small handler that records what it was asked.
type fakeBroker struct {
	members map[string]any
	err     error
	seen    *http.Request
}

func (f *fakeBroker) TokenMembers(_ context.Context, id, client string, _ bool) (map[string]any, error) {
	if id != "c1" || client != "agent" {
		return nil, httpapi.NotFound("connection")
	}
	return f.members, f.err
}

func (f *fakeBroker) RefreshMembers(ctx context.Context, id, client string, idToken bool) (map[string]any, error) {
	return f.TokenMembers(ctx, id, client, idToken)
}

func (f *fakeBroker) InProcessHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /connections/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.seen = r
		if r.PathValue("id") != "c1" {
			httpapi.WriteError(w, r, logging.Discard(), httpapi.NotFound("connection"))
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"connection_id": "c1", "status": "active", "scopes": []string{"read"}})
	})
	mux.HandleFunc("DELETE /connections/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	return mux
}

func newClient(t *testing.T, f *fakeBroker) *localbroker.Client {
	t.Helper()
	c, err := localbroker.New(f, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTokenReadsAreGoValues(t *testing.T) {
	f := &fakeBroker{members: map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": int64(60),
		"expires_at": "2030-01-01T00:00:00Z", "provider": "p", "scope": "read", "team": map[string]any{"id": "T1"}}}
	c := newClient(t, f)
	for name, read := range map[string]func(context.Context, string, string) (brokerclient.Token, error){
		"token": c.Token, "refresh": c.Refresh,
	} {
		tok, err := read(context.Background(), "c1", "agent")
		if err != nil || tok.AccessToken != "at" || tok.ExpiresIn != 60 || string(tok.Extras["team"]) != `{"id":"T1"}` ||
			!tok.ExpiresAt.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("%s: %+v, %v", name, tok, err)
		}
		// Another client's connection: the broker's 404 reaches the agent.
		if _, err := read(context.Background(), "c1", "other"); !isError(err, http.StatusNotFound, httpapi.CodeNotFound) {
			t.Errorf("%s of another client's connection: %v", name, err)
		}
	}
	// An error the broker did not mean for clients becomes 502 broker_error.
	f.err = errors.New("sql: connection reset")
	if _, err := c.Token(context.Background(), "c1", "agent"); !isError(err, http.StatusBadGateway, brokerclient.CodeBrokerError) {
		t.Errorf("internal error: %v", err)
	}
}

func TestOtherCallsGoThroughTheHandlerInMemory(t *testing.T) {
	f := &fakeBroker{}
	c := newClient(t, f)
	conn, err := c.Connection(context.Background(), "c1", "agent")
	if err != nil || conn.Status != "active" || len(conn.Scopes) != 1 {
		t.Fatalf("connection: %+v, %v", conn, err)
	}
	// What the handler saw is a gateway call naming its owner, without a
	// broker key (in process there is none to present) or a peer.
	if f.seen.URL.Query().Get("client_name") != "agent" || f.seen.Header.Get(httpapi.GatewayHeader) == "" ||
		f.seen.Header.Get("X-Api-Key") != "" || f.seen.RemoteAddr != "" {
		t.Errorf("request seen: %v %v", f.seen.URL, f.seen.Header)
	}
	if _, err := c.Connection(context.Background(), "c2", "agent"); !isError(err, http.StatusNotFound, httpapi.CodeNotFound) {
		t.Errorf("unknown connection: %v", err)
	}
	if err := c.DeleteConnection(context.Background(), "c1", "agent"); err != nil {
		t.Errorf("delete: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Connection(ctx, "c1", "agent"); !isError(err, http.StatusServiceUnavailable, httpapi.CodeUnavailable) {
		t.Errorf("canceled call: %v", err)
	}
}

func isError(err error, status int, code string) bool {
	e, ok := httpapi.As(err)
	return ok && e.Status == status && e.Code == code
}
