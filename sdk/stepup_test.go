package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
)

func TestAddScopesSendsTheConnection(t *testing.T) {
	var got map[string]any
	f := newFakeGateway(t, map[string]http.HandlerFunc{
		"POST /v1/request-connection": func(w http.ResponseWriter, r *http.Request) {
			_ = json.NewDecoder(r.Body).Decode(&got)
			writeJSON(w, 200, map[string]any{"authUrl": "https://broker.example/auth/start/s", "connection_id": testID,
				"state": "s", "scopes": []string{"openid", "files.write"}, "provider_id": "p"})
		},
	})
	c, _, _ := testClient(t, f)
	conn, err := c.AddScopes(context.Background(), AddScopesInput{ConnectionID: testID, UserID: "alice", ProviderName: "demo",
		Scopes: []string{"files.write"}, ReturnURL: "https://app.example/back"})
	if err != nil {
		t.Fatal(err)
	}
	if got["connection_id"] != testID || !reflect.DeepEqual(got["scopes"], []any{"files.write"}) {
		t.Fatalf("request body %v", got)
	}
	if conn.ConnectionID != testID || !reflect.DeepEqual(conn.Scopes, []string{"openid", "files.write"}) {
		t.Fatalf("answer %+v", conn)
	}
	if _, err := c.AddScopes(context.Background(), AddScopesInput{UserID: "alice", Scopes: []string{"x"}}); err == nil {
		t.Fatal("AddScopes without a connection id was sent")
	}
	if f.calls("POST /v1/request-connection") != 1 {
		t.Fatalf("%d calls", f.calls("POST /v1/request-connection"))
	}
}

func TestAddScopesLimited(t *testing.T) {
	f := newFakeGateway(t, map[string]http.HandlerFunc{
		"POST /v1/request-connection": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "600")
			writeErr(w, 429, "step_up_limited", "at most 3 step-ups per connection in 10m0s; try again later")
		},
	})
	c, _, _ := testClient(t, f)
	_, err := c.AddScopes(context.Background(), AddScopesInput{ConnectionID: testID, UserID: "alice", ProviderName: "demo",
		Scopes: []string{"files.write"}, ReturnURL: "https://app.example/back"})
	var ae *APIError
	if !errors.Is(err, ErrStepUpLimited) || !errors.As(err, &ae) || ae.RetryAfter != 10*time.Minute {
		t.Fatalf("err = %v, want ErrStepUpLimited with a ten-minute Retry-After", err)
	}
	if f.calls("POST /v1/request-connection") != 1 {
		t.Fatal("a step-up refused for ten minutes was retried")
	}
	if errors.Is(&APIError{Status: 429, Code: "rate_limited"}, ErrStepUpLimited) {
		t.Fatal("the gateway's own rate limit reads as a step-up limit")
	}
}

func TestWaitForStepUp(t *testing.T) {
	active := func(su *StepUpStatus) Status { return Status{Status: "active", StepUp: su} }
	tests := []struct {
		name     string
		statuses []Status
		wantErr  error
	}{
		{"completed", []Status{active(&StepUpStatus{Status: "pending"}), active(&StepUpStatus{Status: "completed"})}, nil},
		{"denied", []Status{active(&StepUpStatus{Status: "pending"}), active(&StepUpStatus{Status: "failed", Reason: "access_denied"})}, ErrStepUpFailed},
		{"connection failed meanwhile", []Status{active(&StepUpStatus{Status: "pending"}), {Status: "failed", Detail: "expired"}}, ErrFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			f := newFakeGateway(t, map[string]http.HandlerFunc{
				"GET /v1/check-connection/{id}": func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, 200, tc.statuses[min(int(n.Add(1))-1, len(tc.statuses)-1)])
				},
			})
			c, _, _ := testClient(t, f)
			err := c.WaitForStepUp(context.Background(), testID, WaitOptions{Interval: time.Second})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			var sf *StepUpFailedError
			if tc.wantErr == ErrStepUpFailed && (!errors.As(err, &sf) || sf.Reason != "access_denied") {
				t.Fatalf("err = %#v, want the reason", err)
			}
			if int(n.Load()) != len(tc.statuses) {
				t.Fatalf("%d polls, want %d", n.Load(), len(tc.statuses))
			}
		})
	}
}
