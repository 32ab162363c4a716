package cli

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestDevHostGuard(t *testing.T) {
	reached := 0
	h := devHostGuard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++ }),
		slog.New(slog.NewTextHandler(io.Discard, nil)), "Dev.Box.Lan", "")
	tests := []struct {
		host string
		ok   bool
	}{
		{"localhost:8080", true},
		{"localhost", true},
		{"127.0.0.1:8090", true},
		{"[::1]:8080", true},
		{"[::1]", true},
		{"::1", true},
		{"dev.box.lan:8080", true},
		{"attacker.example:8080", false},
		{"attacker.example", false},
		{"localhost.attacker.example", false},
		{"127.0.0.1.nip.io:8080", false},
		{"localhost.:8080", false},
		{"", false},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			before := reached
			req := httptest.NewRequest(http.MethodGet, "/connections", nil)
			req.Host = tc.host
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if tc.ok {
				if reached != before+1 {
					t.Fatalf("Host %q did not reach the handler: %d", tc.host, rec.Code)
				}
				return
			}
			var env struct{ Code, Message string }
			if reached != before || rec.Code != http.StatusMisdirectedRequest ||
				json.Unmarshal(rec.Body.Bytes(), &env) != nil || env.Code != "misdirected_request" {
				t.Fatalf("Host %q: reached %v, %d %s", tc.host, reached != before, rec.Code, rec.Body)
			}
		})
	}
}
