package sdk_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/dromos-dev/dromos/sdk"
)

func TestConfirmConnection(t *testing.T) {
	var calls atomic.Int64
	var status atomic.Int64
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var in map[string]string
		if r.Method != http.MethodPost || r.URL.Path != "/v1/confirm-connection" || json.NewDecoder(r.Body).Decode(&in) != nil ||
			in["confirmation"] != "conn.value" || in["user_id"] != "mallory" || len(in) != 2 {
			t.Errorf("request %s %s %v", r.Method, r.URL.Path, in)
		}
		w.Header().Set("Content-Type", "application/json")
		switch st := int(status.Load()); st {
		case http.StatusOK:
			_, _ = w.Write([]byte(`{"connection_id":"c1","status":"pending","continue_url":"https://broker.test/auth/confirm?confirmation=x"}`))
		default:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(st)
			_, _ = w.Write([]byte(`{"code":"user_mismatch","message":"m"}`))
		}
	}))
	t.Cleanup(srv.Close)
	c, err := sdk.New(srv.URL, sdk.WithAPIKey("key"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ConfirmConnection(t.Context(), "conn.value", "mallory")
	if err != nil || got.ConnectionID != "c1" || got.ContinueURL != "https://broker.test/auth/confirm?confirmation=x" {
		t.Fatalf("%+v %v", got, err)
	}
	status.Store(http.StatusConflict)
	var ae *sdk.APIError
	if _, err := c.ConfirmConnection(t.Context(), "conn.value", "mallory"); !errors.As(err, &ae) || ae.Code != "user_mismatch" {
		t.Fatalf("409: %v", err)
	}
	// A 503 is not retried: the broker may have used the value already.
	status.Store(http.StatusServiceUnavailable)
	before := calls.Load()
	if _, err := c.ConfirmConnection(t.Context(), "conn.value", "mallory"); err == nil {
		t.Fatal("503 succeeded")
	}
	if n := calls.Load() - before; n != 1 {
		t.Fatalf("%d attempts on a 503, want 1", n)
	}
}
