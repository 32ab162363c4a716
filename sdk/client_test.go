package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "localhost:8090", "ftp://gw", "http://", "http://gw/?x=1", "://"} {
		if _, err := New(u); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	c, err := New("http://gw.example:8090/prefix/")
	if err != nil || c.base != "http://gw.example:8090/prefix" {
		t.Fatalf("New kept %q, %v", c.base, err)
	}
}

func TestRetry(t *testing.T) {
	policy := RetryPolicy{MaxAttempts: 3, BaseDelay: time.Second, MaxDelay: 2 * time.Second}
	tests := []struct {
		name       string
		answers    []int  // status per attempt; the last repeats
		retryAfter string // sent with every error answer
		wantCalls  int
		wantSleeps []time.Duration
		wantErr    error
	}{
		{"503 with Retry-After is honoured", []int{503, 503, 200}, "2", 3, []time.Duration{2 * time.Second, 2 * time.Second}, nil},
		{"429 with Retry-After", []int{429, 200}, "1", 2, []time.Duration{time.Second}, nil},
		{"Retry-After beyond MaxDelay is returned at once", []int{503, 200}, "3", 1, nil, nil},
		{"502 backs off with capped jitter", []int{502, 502, 200}, "", 3,
			[]time.Duration{time.Second - 1, 2*time.Second - 1}, nil},
		{"gives up after MaxAttempts", []int{503}, "", 3, []time.Duration{time.Second - 1, 2*time.Second - 1}, nil},
		{"400 is not retried", []int{400}, "1", 1, nil, nil},
		{"401 is not retried", []int{401}, "1", 1, nil, ErrUnauthorized},
		{"404 is not retried", []int{404}, "1", 1, nil, ErrNotFound},
		{"409 is not retried", []int{409}, "1", 1, nil, ErrPending},
		{"500 is not retried", []int{500}, "1", 1, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			f := newFakeGateway(t, map[string]http.HandlerFunc{
				"GET /v1/check-connection/{id}": func(w http.ResponseWriter, r *http.Request) {
					i := int(n.Add(1)) - 1
					st := tc.answers[min(i, len(tc.answers)-1)]
					if st == 200 {
						writeJSON(w, 200, Status{Status: StatusActive})
						return
					}
					if tc.retryAfter != "" {
						w.Header().Set("Retry-After", tc.retryAfter)
					}
					writeErr(w, st, map[int]string{409: "not_ready"}[st], "scripted")
				},
			})
			c, _, s := testClient(t, f, WithRetry(policy))
			_, err := c.CheckConnection(context.Background(), testID)
			if got := f.calls("GET /v1/check-connection/{id}"); got != tc.wantCalls {
				t.Errorf("attempts = %d, want %d", got, tc.wantCalls)
			}
			if !reflect.DeepEqual(s.all(), tc.wantSleeps) {
				t.Errorf("sleeps = %v, want %v", s.all(), tc.wantSleeps)
			}
			final := tc.answers[min(tc.wantCalls-1, len(tc.answers)-1)]
			switch {
			case final == 200 && err != nil:
				t.Fatalf("err = %v", err)
			case final != 200:
				var ae *APIError
				if !errors.As(err, &ae) || ae.Status != final || ae.Message != "scripted" {
					t.Fatalf("err = %v, want an APIError %d", err, final)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want errors.Is %v", err, tc.wantErr)
				}
			}
		})
	}
}

func TestRetryConnectionErrors(t *testing.T) {
	var n atomic.Int32
	f := newFakeGateway(t, map[string]http.HandlerFunc{
		"GET /v1/providers": func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				// Drop the connection without an answer.
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
			writeJSON(w, 200, map[string]any{"providers": []Provider{{Name: "demo", DisplayName: "Demo", Scopes: []string{"openid"}}}})
		},
	})
	c, _, s := testClient(t, f)
	ps, err := c.ListProviders(context.Background())
	if err != nil || len(ps) != 1 || ps[0].Name != "demo" {
		t.Fatalf("ListProviders = %v, %v", ps, err)
	}
	if got := f.calls("GET /v1/providers"); got != 2 || len(s.all()) != 1 {
		t.Fatalf("attempts %d, sleeps %v", got, s.all())
	}
}

func TestRetryAfterBeyondDeadlineIsNotWaited(t *testing.T) {
	f := newFakeGateway(t, map[string]http.HandlerFunc{
		"GET /v1/token/{id}": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "120")
			writeErr(w, 503, "unavailable", "broker unreachable")
		},
	})
	// MaxDelay allows the wait; the deadline is what must stop it.
	c, clk, s := testClient(t, f, WithRetry(RetryPolicy{MaxAttempts: 3, BaseDelay: time.Second, MaxDelay: 5 * time.Minute}))
	// The deadline is real time, so the client's clock must be too.
	clk.t = time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), clk.now().Add(10*time.Second))
	defer cancel()
	_, err := c.GetToken(ctx, testID)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != "unavailable" {
		t.Fatalf("err = %v", err)
	}
	if f.calls("GET /v1/token/{id}") != 1 || len(s.all()) != 0 {
		t.Fatalf("calls %d sleeps %v", f.calls("GET /v1/token/{id}"), s.all())
	}
}

// TestRetryAfterBeyondMaxDelayIsNotWaited: a gateway asking for ten
// minutes must not park the caller (and, through a token source's lock,
// every caller of that connection); the error comes back at once and says
// how long the gateway asked for.
func TestRetryAfterBeyondMaxDelayIsNotWaited(t *testing.T) {
	f := newFakeGateway(t, map[string]http.HandlerFunc{
		"GET /v1/token/{id}": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "600")
			writeErr(w, 503, "unavailable", "broker unreachable")
		},
	})
	c, _, s := testClient(t, f) // DefaultRetryPolicy: MaxDelay 2 s
	_, err := c.GetToken(context.Background(), testID)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.RetryAfter != 10*time.Minute {
		t.Fatalf("err = %#v, want a 503 APIError with RetryAfter 10m", err)
	}
	if !strings.Contains(err.Error(), "retry after 10m0s") {
		t.Fatalf("Error() = %q does not report the Retry-After", err.Error())
	}
	if f.calls("GET /v1/token/{id}") != 1 || len(s.all()) != 0 {
		t.Fatalf("calls %d sleeps %v", f.calls("GET /v1/token/{id}"), s.all())
	}
}

func TestErrorsIs(t *testing.T) {
	all := []error{ErrNotFound, ErrPending, ErrReauthRequired, ErrUnauthorized, ErrNotSupported, ErrFailed}
	tests := []struct {
		name   string
		status int
		code   string
		want   error // nil: matches none
	}{
		{"404", 404, "not_found", ErrNotFound},
		{"401", 401, "unauthorized", ErrUnauthorized},
		{"409 not_ready", 409, "not_ready", ErrPending},
		{"409 reauth_required", 409, "reauth_required", ErrReauthRequired},
		{"409 other code", 409, "already_exists", nil},
		{"501", 501, "not_implemented", ErrNotSupported},
		{"405", 405, "method_not_allowed", ErrNotSupported},
		{"400", 400, "bad_request", nil},
		{"503", 503, "unavailable", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := error(&APIError{Status: tc.status, Code: tc.code})
			for _, s := range all {
				if got := errors.Is(err, s); got != (s == tc.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, s, got)
				}
			}
		})
	}
	fe := error(&FailedError{ConnectionID: testID, Detail: "denied", Reason: "access_denied"})
	if !errors.Is(fe, ErrFailed) || errors.Is(fe, ErrNotFound) {
		t.Fatal("FailedError does not match ErrFailed alone")
	}
}

func TestAPIErrorFromNonEnvelope(t *testing.T) {
	e := newAPIError(502, []byte("<html>Bad Gateway from a proxy holding secret-xyz</html>"))
	if e.Code != "" || e.Message != "" || strings.Contains(e.Error(), "secret-xyz") {
		t.Fatalf("non-envelope body leaked into %q", e.Error())
	}
	if e.Error() != "dromos: 502 bad_gateway" {
		t.Fatalf("Error() = %q", e.Error())
	}
	long := newAPIError(400, []byte(`{"code":"bad_request","message":"`+strings.Repeat("é", 600)+`\nx"}`))
	if len(long.Message) > maxMessage+len("…") || strings.Contains(long.Message, "\n") {
		t.Fatalf("message not clipped: %d bytes", len(long.Message))
	}
}

func TestRequestConnectionWire(t *testing.T) {
	var got map[string]any
	var auth string
	f := newFakeGateway(t, map[string]http.HandlerFunc{
		"POST /v1/request-connection": func(w http.ResponseWriter, r *http.Request) {
			auth = r.Header.Get("Authorization")
			if r.Header.Get("Content-Type") != "application/json" {
				writeErr(w, 400, "bad_request", "content type")
				return
			}
			_ = json.NewDecoder(r.Body).Decode(&got)
			writeJSON(w, 200, map[string]any{"authUrl": "https://idp/authorize?x", "connection_id": testID,
				"state": "st", "scopes": []string{"openid"}, "provider_id": "p1"})
		},
	})
	c, _, _ := testClient(t, f, WithAPIKey("k-123"))
	conn, err := c.RequestConnection(context.Background(), RequestConnectionInput{
		UserID: "u-42", ProviderName: "demo", Scopes: []string{"openid"}, ReturnURL: "https://app/done",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &Connection{AuthURL: "https://idp/authorize?x", ConnectionID: testID, State: "st", Scopes: []string{"openid"}, ProviderID: "p1"}
	if !reflect.DeepEqual(conn, want) {
		t.Fatalf("conn = %+v", conn)
	}
	wantBody := map[string]any{"user_id": "u-42", "provider_name": "demo", "scopes": []any{"openid"}, "return_url": "https://app/done"}
	if !reflect.DeepEqual(got, wantBody) {
		t.Fatalf("body = %v", got)
	}
	if auth != "Bearer k-123" {
		t.Fatalf("Authorization = %q", auth)
	}
	// A reconnect names the connection; a new connection does not.
	if _, err := c.RequestConnection(context.Background(), RequestConnectionInput{
		UserID: "u-42", ProviderName: "demo", Scopes: []string{"openid"}, ReturnURL: "https://app/done", ConnectionID: testID,
	}); err != nil {
		t.Fatal(err)
	}
	if got["connection_id"] != testID {
		t.Fatalf("reconnect body = %v", got)
	}
}

func TestWaitForActive(t *testing.T) {
	tests := []struct {
		name     string
		statuses []Status
		wantErr  error
		wantSeen int
	}{
		{"active after pending", []Status{{Status: "pending"}, {Status: "pending", Detail: "exchanging"}, {Status: "active"}}, nil, 3},
		{"failed carries the reason", []Status{{Status: "pending"}, {Status: "failed", Detail: "denied", Reason: "access_denied"}}, ErrFailed, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			f := newFakeGateway(t, map[string]http.HandlerFunc{
				"GET /v1/check-connection/{id}": func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, 200, tc.statuses[min(int(n.Add(1))-1, len(tc.statuses)-1)])
				},
			})
			c, _, s := testClient(t, f)
			var seen []Status
			err := c.WaitForActive(context.Background(), testID, WaitOptions{Interval: time.Second, MaxInterval: 1200 * time.Millisecond,
				Progress: func(s Status) { seen = append(seen, s) }})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(seen, tc.statuses) {
				t.Fatalf("progress saw %v", seen)
			}
			want := []time.Duration{time.Second, 1200 * time.Millisecond}[:tc.wantSeen-1]
			if !reflect.DeepEqual(s.all(), want) {
				t.Fatalf("pauses %v, want %v", s.all(), want)
			}
			var fe *FailedError
			if errors.As(err, &fe) && (fe.Reason != "access_denied" || fe.Detail != "denied" || fe.ConnectionID != testID) {
				t.Fatalf("FailedError = %+v", fe)
			}
		})
	}
	t.Run("context ends the wait", func(t *testing.T) {
		f := newFakeGateway(t, map[string]http.HandlerFunc{
			"GET /v1/check-connection/{id}": func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, Status{Status: "pending"}) },
		})
		c, _, _ := testClient(t, f)
		ctx, cancel := context.WithCancel(context.Background())
		polls := 0
		err := c.WaitForActive(ctx, testID, WaitOptions{Progress: func(Status) {
			if polls++; polls == 3 {
				cancel()
			}
		}})
		if !errors.Is(err, context.Canceled) || polls != 3 {
			t.Fatalf("err = %v after %d polls", err, polls)
		}
	})
}

func TestDeleteConnection(t *testing.T) {
	tests := []struct {
		name    string
		delete  int // status of DELETE
		check   int // status of the follow-up check
		wantErr error
	}{
		{"deleted", 204, 0, nil},
		{"405 means no such route", 405, 0, ErrNotSupported},
		{"404 for a live connection means no such route", 404, 200, ErrNotSupported},
		{"404 for an unknown connection", 404, 404, ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeGateway(t, map[string]http.HandlerFunc{
				"DELETE /v1/connections/{id}": func(w http.ResponseWriter, r *http.Request) {
					if tc.delete == 204 {
						w.WriteHeader(204)
						return
					}
					writeErr(w, tc.delete, "x", "scripted")
				},
				"GET /v1/check-connection/{id}": func(w http.ResponseWriter, r *http.Request) {
					if tc.check == 200 {
						writeJSON(w, 200, Status{Status: "active"})
						return
					}
					writeErr(w, 404, "not_found", "connection not found")
				},
			})
			c, _, _ := testClient(t, f)
			err := c.DeleteConnection(context.Background(), testID)
			if tc.wantErr == nil && err != nil || !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if errors.Is(err, ErrNotSupported) && errors.Is(err, ErrNotFound) {
				t.Fatal("error is both not supported and not found")
			}
		})
	}
	if err := (&Client{}).DeleteConnection(context.Background(), ""); err == nil {
		t.Fatal("empty id accepted")
	}
}

func TestLoggerNeverLogsSecrets(t *testing.T) {
	const key, access, idTok, state = "api-key-SECRET-1", "access-SECRET-2", "idtok-access-SECRET-2", "state-SECRET-3"
	var refreshN atomic.Int32
	f := newFakeGateway(t, map[string]http.HandlerFunc{
		"POST /v1/request-connection": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, map[string]any{"authUrl": "https://idp/a?state=" + state, "connection_id": testID, "state": state,
				"scopes": []string{"openid"}, "provider_id": "p"})
		},
		"GET /v1/token/{id}": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, tokenAnswer(access, time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)))
		},
		"POST /v1/refresh/{id}": func(w http.ResponseWriter, r *http.Request) {
			if refreshN.Add(1) == 1 {
				w.Header().Set("Retry-After", "1")
				writeErr(w, 503, "unavailable", "try later")
				return
			}
			writeJSON(w, 200, tokenAnswer(access, time.Time{}))
		},
	})
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, _, _ := testClient(t, f, WithAPIKey(key), WithLogger(log))
	ctx := context.Background()
	if _, err := c.RequestConnection(ctx, RequestConnectionInput{UserID: "u", ProviderName: "demo", Scopes: []string{"openid"}, ReturnURL: "https://a/b"}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.GetToken(ctx, testID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(ctx, testID); err != nil {
		t.Fatal(err)
	}
	log.Info("agent logs the token carelessly", "token", tok, "ptr", *tok)
	t.Logf("%v %+v %#v %s", tok, tok, tok, tok)
	out := buf.String()
	for _, secret := range []string{key, access, idTok, state} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
	for _, s := range []string{`"route":"/v1/token/{id}"`, `"status":503`, `"attempt":2`, `"method":"POST"`} {
		if !strings.Contains(out, s) {
			t.Errorf("log lacks %s:\n%s", s, out)
		}
	}
	for _, s := range []string{fmtAll(tok), fmtAll(*tok)} {
		if strings.Contains(s, access) || strings.Contains(s, idTok) {
			t.Errorf("formatting leaks the token: %s", s)
		}
	}
}

func fmtAll(v any) string {
	var b strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		b.WriteString(fmt.Sprintf(verb, v))
	}
	return b.String()
}

func FuzzNewAPIError(f *testing.F) {
	for _, s := range []string{`{"code":"not_found","message":"connection not found"}`, `<html>`, `{"message":"a\nb"}`, `{"code":7}`, ``} {
		f.Add(503, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := newAPIError(status, body)
		if e.Status != status || len(e.Message) > maxMessage+len("…") || len(e.Code) > 64+len("…") {
			t.Fatalf("unbounded error %+v", e)
		}
		if strings.ContainsAny(e.Error(), "\n\r") {
			t.Fatalf("control characters in %q", e.Error())
		}
	})
}

func TestCheckConnectionProviderData(t *testing.T) {
	f := newFakeGateway(t, map[string]http.HandlerFunc{
		"GET /v1/check-connection/{id}": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"status":"active","provider_data":{"realmId":"4620816365178608920"}}`))
		},
	})
	c, _, _ := testClient(t, f)
	st, err := c.CheckConnection(context.Background(), testID)
	if err != nil || st.Status != StatusActive || st.ProviderData["realmId"] != "4620816365178608920" {
		t.Fatalf("CheckConnection = %+v, %v", st, err)
	}
}
