package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/logging"
)

type body struct {
	Name   string            `json:"name"`
	Scopes []string          `json:"scopes"`
	Inner  *innerBody        `json:"inner"`
	Labels map[string]string `json:"labels"`
}

type innerBody struct {
	Kind string `json:"kind"`
}

func TestDecodeJSON(t *testing.T) {
	cases := []struct {
		name, ct, in string
		status       int
		msg          string
	}{
		{"ok", "application/json", `{"name":"a","scopes":["x"]}`, 0, ""},
		{"ok without content type", "", `{"name":"a"}`, 0, ""},
		{"unknown field", "application/json", `{"name":"a","nope":1}`, 400, `unknown field "nope"; accepted fields: name, scopes, inner, labels`},
		{"wrong type", "application/json", `{"scopes":"x"}`, 400, `field "scopes" must be an array`},
		{"syntax", "application/json", `{"name":`, 400, "truncated"},
		{"garbage", "application/json", `{"name" x}`, 400, "malformed JSON at byte"},
		{"empty", "application/json", ``, 400, "empty"},
		{"two values", "application/json", `{} {}`, 400, "single JSON object"},
		{"array", "application/json", `[1]`, 400, "JSON object"},
		{"text content type", "text/plain", `{}`, 415, "application/json"},
		{"too large", "application/json", `{"name":"` + strings.Repeat("a", 2000) + `"}`, 413, "larger than 1024"},
		{"NUL escape", "application/json", `{"name":"a\u0000b"}`, 400, "NUL character"},
		{"NUL escape in an array", "application/json", `{"scopes":["x","\u0000"]}`, 400, "NUL character"},
		{"NUL after an escaped backslash", "application/json", `{"name":"a\\\u0000"}`, 400, "NUL character"},
		{"escaped backslash then u0000 text", "application/json", `{"name":"a\\u0000"}`, 0, ""},
		{"raw NUL byte", "application/json", "{\"name\":\"a\x00\"}", 400, "malformed JSON"},
		{"name in another case", "application/json", `{"NAME":"a"}`, 400, `unknown field "NAME"; accepted fields: name, scopes, inner, labels`},
		{"name in another case, nested", "application/json", `{"name":"a","inner":{"Kind":"x"}}`, 400, `unknown field "inner.Kind"; accepted fields: kind`},
		{"unknown nested field", "application/json", `{"name":"a","inner":{"sort":"x"}}`, 400, `unknown field "inner.sort"; accepted fields: kind`},
		{"first unknown as written", "application/json", `{"zz":1,"aa":2}`, 400, `unknown field "zz";`},
		{"nested exact", "application/json", `{"name":"a","inner":{"kind":"x"},"labels":{"ANY":"case"}}`, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.in))
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			var b body
			err := DecodeJSON(httptest.NewRecorder(), r, &b, 1024)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			e, ok := As(err)
			if !ok || e.Status != tc.status || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("got %#v, want status %d containing %q", err, tc.status, tc.msg)
			}
		})
	}
}

func TestWriteErrorHidesInternalDetail(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/", nil)
	WriteError(w, r, logging.Discard(), errors.New("pq: password=hunter2 rejected"))
	if w.Code != 500 || strings.Contains(w.Body.String(), "hunter2") {
		t.Fatalf("internal detail leaked: %d %s", w.Code, w.Body)
	}
	var env Envelope
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env.Code != CodeInternal {
		t.Fatalf("bad envelope %s", w.Body)
	}
}

func TestWriteErrorRetryAfter(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, httptest.NewRequest("GET", "/", nil), logging.Discard(), Unavailable("database unavailable", 1500*time.Millisecond, errors.New("dial")))
	if w.Code != 503 || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("got %d Retry-After=%q", w.Code, w.Header().Get("Retry-After"))
	}
}

func TestMiddlewareRequestIDAndRecovery(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	mux.HandleFunc("GET /id", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(logging.RequestID(r.Context())))
	})
	var routes []string
	h := Middleware(mux, logging.Discard(), time.Now, func(route string, status int, _ time.Duration) {
		routes = append(routes, route)
	})

	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/id", nil)
	r.Header.Set(RequestIDHeader, "abc-123")
	h.ServeHTTP(w, r)
	if w.Body.String() != "abc-123" || w.Header().Get(RequestIDHeader) != "abc-123" {
		t.Fatalf("request id not propagated: %q", w.Body.String())
	}

	w = httptest.NewRecorder()
	r = httptest.NewRequest("GET", "/id", nil)
	r.Header.Set(RequestIDHeader, "bad\nid")
	h.ServeHTTP(w, r)
	if got := w.Body.String(); got == "" || strings.ContainsAny(got, "\n") {
		t.Fatalf("unsafe request id kept: %q", got)
	}

	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/boom", nil))
	if w.Code != 500 || !strings.Contains(w.Body.String(), CodeInternal) {
		t.Fatalf("panic not recovered into envelope: %d %s", w.Code, w.Body)
	}
	if len(routes) != 3 || routes[0] != "GET /id" || routes[2] != "GET /boom" {
		t.Fatalf("observer saw %v", routes)
	}
}

// The error code of a failed request reaches the log: "code" is a
// redacted key (OAuth codes), so it is logged as error_code.
func TestWriteErrorLogsTheErrorCode(t *testing.T) {
	var buf strings.Builder
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/", nil)
	WriteError(w, r, logging.New(&buf, slog.LevelInfo), &Error{Status: 400, Code: "discovery_failed", Message: "m", Cause: errors.New("x")})
	if !strings.Contains(buf.String(), `"error_code":"discovery_failed"`) {
		t.Fatalf("log line %s", buf.String())
	}
}

// Unclean paths get the JSON envelope, not the router's HTML redirect.
func TestMiddlewareRefusesUncleanPaths(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/token/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := Middleware(mux, logging.Discard(), time.Now, nil)
	for path, want := range map[string]int{
		"/v1/token/abc":    http.StatusTeapot,
		"/v1/token/a/../b": http.StatusBadRequest,
		"/v1/token/./b":    http.StatusBadRequest,
		"/v1//token/b":     http.StatusBadRequest,
		"/v1/token/..":     http.StatusBadRequest,
		"/v1/token/%2e%2e": http.StatusBadRequest,
	} {
		r := httptest.NewRequest("GET", "http://x"+path, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("%s: %d, want %d", path, w.Code, want)
		}
		if want == http.StatusBadRequest && !strings.Contains(w.Body.String(), `"code":"bad_request"`) {
			t.Errorf("%s: not the JSON envelope: %s", path, w.Body)
		}
	}
}
