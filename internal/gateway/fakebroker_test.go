package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/dromos-dev/dromos/internal/state"
)

// fakeBroker implements the broker endpoints the gateway calls, signing
// state with a real state.Signer. Tests steer it through its fields and
// override single routes with intercept.
type fakeBroker struct {
	t      *testing.T
	srv    *httptest.Server
	signer *state.Signer
	apiKey string

	requests atomic.Int64 // every request that reached the fake

	mu          sync.Mutex
	conns       map[string]*fakeConn
	seen        []seenRequest
	intercept   func(w http.ResponseWriter, r *http.Request) bool // return true when handled
	stateFor    func(p state.Payload) string                      // overrides the state returned
	connIDFor   func(signed string) string                        // overrides the connection id returned
	providersIn []map[string]any
}

type fakeConn struct {
	workspace, client, user, provider string
	status, reason                    string
	token                             map[string]any
}

type seenRequest struct {
	method, path string
	query        url.Values
	apiKey       string
	requestID    string
	gateway      bool // the call carried httpapi.GatewayHeader
	body         map[string]any
	raw          []byte // the consent-spec body as sent
}

func newFakeBroker(t *testing.T, signer *state.Signer, apiKey string) *fakeBroker {
	t.Helper()
	fb := &fakeBroker{t: t, signer: signer, apiKey: apiKey, conns: map[string]*fakeConn{}}
	fb.providersIn = []map[string]any{{
		"id": "prov-1", "name": "google", "display_name": "Google", "scopes": []string{"openid", "email"},
		"client_id": "client-id-SHOULD-NOT-LEAK", "has_client_secret": true, "issuer": "https://accounts.google.com",
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/consent-spec", fb.consent)
	mux.HandleFunc("GET /connections/{id}", fb.connection)
	mux.HandleFunc("GET /connections/{id}/token", fb.token)
	mux.HandleFunc("POST /connections/{id}/refresh", fb.token)
	mux.HandleFunc("GET /providers", fb.providers)
	fb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fb.requests.Add(1)
		fb.record(r)
		if fb.apiKey != "" && r.Header.Get("X-API-Key") != fb.apiKey {
			writeEnvelope(w, http.StatusUnauthorized, "unauthorized", "API key missing or wrong")
			return
		}
		fb.mu.Lock()
		icpt := fb.intercept
		fb.mu.Unlock()
		if icpt != nil && icpt(w, r) {
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(fb.srv.Close)
	return fb
}

func (fb *fakeBroker) record(r *http.Request) {
	sr := seenRequest{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.Query(),
		apiKey: r.Header.Get("X-API-Key"), requestID: r.Header.Get("X-Request-Id"), gateway: r.Header.Get("X-Dromos-Gateway") == "1"}
	if r.Method == http.MethodPost && r.URL.Path == "/auth/consent-spec" {
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, &sr.body)
		sr.raw = raw
		r.Body = io.NopCloser(bytes.NewReader(raw))
	}
	fb.mu.Lock()
	fb.seen = append(fb.seen, sr)
	fb.mu.Unlock()
}

func (fb *fakeBroker) setIntercept(f func(w http.ResponseWriter, r *http.Request) bool) {
	fb.mu.Lock()
	fb.intercept = f
	fb.mu.Unlock()
}

func (fb *fakeBroker) lastSeen() seenRequest {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if len(fb.seen) == 0 {
		fb.t.Fatal("the broker saw no request")
	}
	return fb.seen[len(fb.seen)-1]
}

// set changes a connection's status and token.
func (fb *fakeBroker) set(id, status, reason string, token map[string]any) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	c, ok := fb.conns[id]
	if !ok {
		fb.t.Fatalf("no connection %s", id)
	}
	c.status, c.reason, c.token = status, reason, token
}

func writeEnvelope(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (fb *fakeBroker) consent(w http.ResponseWriter, r *http.Request) {
	var in struct {
		WorkspaceID  string                     `json:"workspace_id"`
		UserID       string                     `json:"user_id"`
		ClientName   string                     `json:"client_name"`
		ProviderName string                     `json:"provider_name"`
		Scopes       []string                   `json:"scopes"`
		ReturnURL    string                     `json:"return_url"`
		Metadata     map[string]json.RawMessage `json:"metadata"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || in.WorkspaceID == "" || in.ProviderName == "" || in.ReturnURL == "" {
		writeEnvelope(w, http.StatusBadRequest, "bad_request", "bad consent request")
		return
	}
	if !strings.EqualFold(in.ProviderName, "google") {
		writeEnvelope(w, http.StatusNotFound, "not_found", "provider not found")
		return
	}
	id := uuid.NewString()
	p := state.Payload{ConnectionID: id, WorkspaceID: in.WorkspaceID, ProviderID: "prov-1", Nonce: "n-" + id[:8]}
	fb.mu.Lock()
	fb.conns[id] = &fakeConn{workspace: in.WorkspaceID, client: in.ClientName, user: in.UserID, provider: "google", status: "pending"}
	stateFor, connIDFor := fb.stateFor, fb.connIDFor
	fb.mu.Unlock()
	st, err := fb.signer.Sign(p)
	if err != nil {
		fb.t.Errorf("sign: %v", err)
	}
	if stateFor != nil {
		st = stateFor(p)
	}
	if connIDFor != nil {
		id = connIDFor(id)
	}
	writeJSON(w, map[string]any{
		"authUrl":       "https://accounts.example.com/authorize?state=" + url.QueryEscape(st),
		"state":         st,
		"scopes":        in.Scopes,
		"provider_id":   "prov-1",
		"connection_id": id,
		"expires_at":    "2030-01-01T00:10:00Z",
	})
}

// lookup finds a connection the caller may see, answering 404 otherwise.
func (fb *fakeBroker) lookup(w http.ResponseWriter, r *http.Request) (fakeConn, bool) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	c, ok := fb.conns[r.PathValue("id")]
	if !ok || (r.URL.Query().Has("client_name") && r.URL.Query().Get("client_name") != c.client) {
		writeEnvelope(w, http.StatusNotFound, "not_found", "connection not found")
		return fakeConn{}, false
	}
	return *c, true
}

func (fb *fakeBroker) connection(w http.ResponseWriter, r *http.Request) {
	c, ok := fb.lookup(w, r)
	if !ok {
		return
	}
	writeJSON(w, map[string]any{
		"connection_id": r.PathValue("id"), "status": c.status, "status_reason": c.reason,
		"workspace_id": c.workspace, "user_id": c.user, "client_name": c.client, "provider_id": "prov-1",
		"provider": c.provider, "scopes": []string{"openid"}, "metadata": map[string]string{},
		"created_at": "2030-01-01T00:00:00Z", "updated_at": "2030-01-01T00:00:00Z", "expires_at": "2030-01-01T00:10:00Z",
	})
}

func (fb *fakeBroker) token(w http.ResponseWriter, r *http.Request) {
	c, ok := fb.lookup(w, r)
	if !ok {
		return
	}
	switch c.status {
	case "pending", "exchanging":
		writeEnvelope(w, http.StatusConflict, "not_ready", "connection is not active yet")
	case "active":
		writeJSON(w, c.token)
	default:
		writeEnvelope(w, http.StatusConflict, "reauth_required", "connection needs a new consent")
	}
}

func (fb *fakeBroker) providers(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{"providers": fb.providersIn})
}
