package cli

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// The dev confirm endpoint refuses what is not its own page's post of a
// well-formed value before the broker hears of it.
func TestDevConfirmRefusesBeforeTheBroker(t *testing.T) {
	broker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the broker was called: %s %s", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(broker.Close)
	d := newDevConfirm(broker.URL, slog.New(slog.NewTextHandler(io.Discard, nil)))
	const value = "3f1c0a6e-1111-4222-8333-944445555666.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	for _, tc := range []struct {
		name    string
		form    string
		headers map[string]string
		status  int
		code    string
	}{
		{"cross-site post", url.Values{"confirmation": {value}}.Encode(), map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "cross_origin"},
		{"same-site post from another port", url.Values{"confirmation": {value}}.Encode(), map[string]string{"Sec-Fetch-Site": "same-site"}, 403, "cross_origin"},
		{"foreign Origin", url.Values{"confirmation": {value}}.Encode(), map[string]string{"Origin": "http://evil.example"}, 403, "cross_origin"},
		{"no value", "", nil, 400, "invalid_confirmation"},
		{"malformed value", url.Values{"confirmation": {"not-a-value"}}.Encode(), map[string]string{"Sec-Fetch-Site": "same-origin"}, 400, "invalid_confirmation"},
		{"oversized form", "confirmation=" + strings.Repeat("A", maxConfirmForm), nil, 400, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8080/dev/confirm", strings.NewReader(tc.form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			d.confirmPost(rec, req)
			body := rec.Body.String()
			if rec.Code != tc.status || !strings.Contains(body, "<code>"+tc.code+"</code>") {
				t.Fatalf("%d %s, want %d %s", rec.Code, body, tc.status, tc.code)
			}
			if strings.Contains(body, value) {
				t.Fatal("the refusal page echoes the value")
			}
		})
	}
}

// The return page offers the button only for a value naming the
// connection in the query, and never for an outcome.
func TestDevReturnPageConfirmVariant(t *testing.T) {
	d := newDevConfirm("http://127.0.0.1:1", slog.New(slog.NewTextHandler(io.Discard, nil)))
	const id = "3f1c0a6e-1111-4222-8333-944445555666"
	value := id + "." + strings.Repeat("A", 43)
	for _, tc := range []struct {
		name       string
		query      url.Values
		wantButton bool
		heading    string
	}{
		{"confirm_url", url.Values{"connection_id": {id}, "confirmation": {value}}, true, "Confirm the connection"},
		{"value for another connection", url.Values{"connection_id": {"3f1c0a6e-1111-4222-8333-000000000000"}, "confirmation": {value}}, false, "Not connected"},
		{"malformed value", url.Values{"connection_id": {id}, "confirmation": {"x"}}, false, "Not connected"},
		{"outcome", url.Values{"connection_id": {id}, "status": {"success"}}, false, "Connected"},
		{"outcome with a value", url.Values{"connection_id": {id}, "status": {"success"}, "confirmation": {value}}, false, "Connected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			d.returnPage(rec, httptest.NewRequest(http.MethodGet, "/dev/return?"+tc.query.Encode(), nil))
			body := rec.Body.String()
			if strings.Contains(body, `class="confirm"`) != tc.wantButton || !strings.Contains(body, "<h1>"+tc.heading+"</h1>") {
				t.Fatalf("page:\n%s", body)
			}
			if rec.Header().Get("Referrer-Policy") != "no-referrer" || rec.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("headers %v", rec.Header())
			}
		})
	}
}
