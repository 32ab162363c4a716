package broker_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dromos-dev/dromos/internal/storage"
)

// A NUL character in any field of a request is a 400 on both backends
// (PostgreSQL cannot store one), and nothing is stored.
func TestNULInRequestsIsBadRequest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, _ := setupFake(t, dbURL)
		for name, body := range map[string]map[string]any{
			"user_id":  {"workspace_id": "ws-1", "user_id": "u\u0000", "provider_name": "fake", "return_url": returnURL},
			"metadata": {"workspace_id": "ws-1", "provider_name": "fake", "return_url": returnURL, "metadata": map[string]string{"k": "v\u0000"}},
		} {
			var env map[string]any
			if st := h.do("POST", "/auth/consent-spec", body, &env); st != http.StatusBadRequest || env["code"] != "bad_request" {
				t.Errorf("%s with NUL: %d %v, want 400 bad_request", name, st, env)
			}
		}
		prof := map[string]any{"name": "nul", "display_name": "N\u0000", "auth_url": "https://idp.example/a",
			"token_url": "https://idp.example/t", "client_id": "c", "client_secret": "s"}
		if st := h.do("POST", "/providers", map[string]any{"profile": prof}, nil); st != http.StatusBadRequest {
			t.Errorf("provider with NUL: %d, want 400", st)
		}
		conns, err := h.store.ListConnections(context.Background(), storage.ConnectionFilter{})
		if err != nil || len(conns) != 0 {
			t.Fatalf("%d connections stored (%v)", len(conns), err)
		}
	})
}

// Audit events keep whatever a client sent in its User-Agent as valid
// text, cut on a character boundary, so one odd request cannot sink the batch of
// token-read events it is written with.
func TestOddClientTextDoesNotSinkAuditEvents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, _ := setupFake(t, dbURL)
		c := h.consent("fake", nil, returnURL)
		h.callback(url.Values{"state": {c.State}, "code": {"c1"}})
		read := func(ua, query string) {
			req, _ := http.NewRequest("GET", h.srv.URL+"/connections/"+c.ConnectionID+"/token"+query, nil)
			req.Header.Set("User-Agent", ua)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("token read: %d", resp.StatusCode)
			}
		}
		read("honest-agent/1.0", "")
		read("evil\xff\xfe", "")
		read("café-agent/"+strings.Repeat("é", 200), "")
		h.broker.FlushAudit()
		events, err := h.store.ListAudit(context.Background(), storage.AuditFilter{ConnectionID: c.ConnectionID})
		if err != nil {
			t.Fatal(err)
		}
		reads := 0
		for _, e := range events {
			if e.Type != "token.read" {
				continue
			}
			reads++
			if !utf8.ValidString(e.UserAgent) || !utf8.ValidString(e.Actor) || len(e.UserAgent) > 256 {
				t.Errorf("stored text not cleaned: ua %q actor %q", e.UserAgent, e.Actor)
			}
		}
		if reads != 3 {
			t.Fatalf("%d token.read events stored, want 3", reads)
		}
	})
}
