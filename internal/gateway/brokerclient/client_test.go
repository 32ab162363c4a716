package brokerclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/logging"
)

func fixedNow() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }

func TestParseToken(t *testing.T) {
	cases := []struct {
		name    string
		body    string
		check   func(t *testing.T, tok Token)
		wantErr bool
	}{
		{"full", `{"access_token":"a","token_type":"Bearer","expires_in":3599,"expires_at":"2030-01-01T01:00:00Z","scope":"s","id_token":"i","provider":"google","tenant":"x"}`,
			func(t *testing.T, tok Token) {
				if tok.AccessToken != "a" || tok.ExpiresIn != 3599 || !tok.ExpiresAt.Equal(time.Date(2030, 1, 1, 1, 0, 0, 0, time.UTC)) ||
					tok.IDToken != "i" || tok.Provider != "google" || string(tok.Extras["tenant"]) != `"x"` || len(tok.Extras) != 1 {
					t.Fatalf("%+v", tok)
				}
			}, false},
		{"expires_in as string", `{"access_token":"a","token_type":"Bearer","expires_in":"3600"}`,
			func(t *testing.T, tok Token) {
				if tok.ExpiresIn != 3600 {
					t.Fatalf("%d", tok.ExpiresIn)
				}
			}, false},
		{"expires_in as float", `{"access_token":"a","token_type":"Bearer","expires_in":3600.0}`,
			func(t *testing.T, tok Token) {
				if tok.ExpiresIn != 3600 {
					t.Fatalf("%d", tok.ExpiresIn)
				}
			}, false},
		{"no expiry", `{"access_token":"a","token_type":"bearer","expires_in":null}`,
			func(t *testing.T, tok Token) {
				if tok.ExpiresIn != 0 || !tok.ExpiresAt.IsZero() || tok.Extras != nil {
					t.Fatalf("%+v", tok)
				}
			}, false},
		{"missing access_token", `{"token_type":"Bearer"}`, nil, true},
		{"empty access_token", `{"access_token":"","token_type":"Bearer"}`, nil, true},
		{"missing token_type", `{"access_token":"a"}`, nil, true},
		{"access_token not a string", `{"access_token":1,"token_type":"Bearer"}`, nil, true},
		{"expires_in garbage", `{"access_token":"a","token_type":"Bearer","expires_in":"soon"}`, nil, true},
		{"expires_at garbage", `{"access_token":"a","token_type":"Bearer","expires_at":"tomorrow"}`, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var raw map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tc.body), &raw); err != nil {
				t.Fatal(err)
			}
			tok, err := parseToken(OpGetToken, raw)
			if tc.wantErr {
				e, ok := httpapi.As(err)
				if !ok || e.Status != http.StatusBadGateway || e.Code != CodeBrokerError {
					t.Fatalf("got %v, want 502 broker_error", err)
				}
				if strings.Contains(err.Error(), `"a"`) || strings.Contains(err.Error(), "soon") || strings.Contains(err.Error(), "tomorrow") {
					t.Fatalf("error echoes a value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, tok)
		})
	}
}

// FuzzParseToken feeds arbitrary broker answers to the token parser: it
// must never panic, and whatever it accepts must have the two members an
// agent needs and no extra that shadows a named member.
func FuzzParseToken(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"a","token_type":"Bearer","expires_in":1}`,
		`{"access_token":"a","token_type":"Bearer","expires_in":"1e3","x":[1,{"y":null}]}`,
		`{"access_token":"a","token_type":"Bearer","expires_at":"2030-01-01T00:00:00Z"}`,
		`{}`, `[]`, `null`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var raw map[string]json.RawMessage
		if json.Unmarshal([]byte(body), &raw) != nil {
			return
		}
		tok, err := parseToken(OpGetToken, raw)
		if err != nil {
			if _, ok := httpapi.As(err); !ok {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if tok.AccessToken == "" || tok.TokenType == "" {
			t.Fatalf("accepted a token without access_token or token_type: %s", body)
		}
		for k := range tok.Extras {
			if IsTokenMember(k) {
				t.Fatalf("extra %q shadows a named member", k)
			}
		}
	})
}

func TestBackoffStaysWithinCap(t *testing.T) {
	cl := &Client{retryBase: 100 * time.Millisecond, retryMax: time.Second}
	for i := range 64 {
		ceiling := min(time.Second, 100*time.Millisecond<<min(i, 20))
		for range 20 {
			if d := cl.backoff(i); d < 0 || d >= ceiling {
				t.Fatalf("attempt %d: backoff %v outside [0, %v)", i, d, ceiling)
			}
		}
	}
}

func TestRequestShape(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []*http.Request
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Clone(context.Background()))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"connection_id":"x","status":"pending"}`))
	}))
	defer srv.Close()
	cl, err := New(Options{BaseURL: srv.URL + "/base/", APIKey: "k-SECRET", Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	ctx := logging.WithRequestID(context.Background(), "rid-1")
	// The gateway refuses such ids before calling; escaping is the second
	// line of defence and must keep the id inside one path segment.
	if _, err := cl.Connection(ctx, "../../providers?x=1#f", "agent a&b"); err != nil {
		t.Fatal(err)
	}
	r := seen[0]
	if got := r.URL.EscapedPath(); got != "/base/connections/..%2F..%2Fproviders%3Fx=1%23f" {
		t.Fatalf("path %s", got)
	}
	if r.URL.Query().Get("client_name") != "agent a&b" || len(r.URL.Query()) != 1 {
		t.Fatalf("query %v", r.URL.Query())
	}
	if r.Header.Get("X-API-Key") != "k-SECRET" || r.Header.Get("X-Request-Id") != "rid-1" || r.Header.Get("Authorization") != "" {
		t.Fatalf("headers %v", r.Header)
	}
	if _, err := cl.Connection(context.Background(), "id", ""); err != nil {
		t.Fatal(err)
	}
	if r := seen[1]; r.URL.RawQuery != "" || r.Header.Get("X-Request-Id") != "" {
		t.Fatalf("anonymous call sent query %q, request id %q", r.URL.RawQuery, r.Header.Get("X-Request-Id"))
	}
}

func TestNoRedirectsFollowed(t *testing.T) {
	var hits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
	}))
	defer srv.Close()
	cl, err := New(Options{BaseURL: srv.URL, APIKey: "k-SECRET", Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.Providers(context.Background())
	if e, ok := httpapi.As(err); !ok || e.Status != http.StatusBadGateway || hits.Load() != 0 {
		t.Fatalf("got %v, %d hits on the redirect target", err, hits.Load())
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"no clock", Options{BaseURL: "http://b"}},
		{"relative", Options{BaseURL: "b:8080", Now: fixedNow}},
		{"query", Options{BaseURL: "http://b/?x=1", Now: fixedNow}},
		{"user info", Options{BaseURL: "http://u:p@b/", Now: fixedNow}},
		{"negative", Options{BaseURL: "http://b", Now: fixedNow, AttemptTimeout: -1}},
	} {
		if _, err := New(tc.opts); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

func TestCanceledCallerStopsRetries(t *testing.T) {
	var (
		mu    sync.Mutex
		calls int
	)
	ctx, cancel := context.WithCancel(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		cancel() // the agent goes away while the broker answers 503
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	cl, err := New(Options{BaseURL: srv.URL, Now: fixedNow, RetryBase: time.Hour, RetryMax: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.Providers(ctx)
	if e, ok := httpapi.As(err); !ok || e.Status != http.StatusServiceUnavailable {
		t.Fatalf("got %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Fatalf("%d calls after the caller left", calls)
	}
}
