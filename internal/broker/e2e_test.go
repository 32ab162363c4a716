package broker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/testenv"
)

// returnPage is the agent's return_url: it records the query it lands with.
func returnPage(t *testing.T) (*httptest.Server, chan url.Values) {
	got := make(chan url.Values, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Query()
		_, _ = w.Write([]byte("back at the agent"))
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// TestEndToEndWithIndependentOP runs consent → login at a real, independently
// written OpenID Provider → callback → token over real HTTP, with the
// provider registered by issuer only.
func TestEndToEndWithIndependentOP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL)
		op := testenv.StartOP(t, h.srv.URL+"/auth/callback")
		ret, landed := returnPage(t)
		h.registerProvider(map[string]any{
			"name": "zitadel", "aliases": []string{"Example-OP"}, "issuer": op.Issuer, "enable_discovery": true,
			"client_id": op.ClientID, "client_secret": op.ClientSecret,
		})
		c := h.consentOnly("example-op", []string{"openid", "email", "profile", "offline_access"}, ret.URL+"/done?agent=1")

		browser := testenv.NewBrowser(t)
		page, body, status := browser.Get(c.AuthURL)
		if status != 200 || !strings.Contains(page.Path, "/login") {
			t.Fatalf("expected the OP login page, got %d at %s", status, page.Path)
		}
		final, _, status := op.LoginAtOP(browser, page, body)
		if status != 200 || final.Host != strings.TrimPrefix(ret.URL, "http://") {
			t.Fatalf("did not land on the return page: %d %s", status, final.Host)
		}
		q := <-landed
		if q.Get("status") != "success" || q.Get("connection_id") != c.ConnectionID || q.Get("agent") != "1" {
			t.Fatalf("return query %v", q)
		}

		var tok map[string]any
		if st := h.do("GET", "/connections/"+c.ConnectionID+"/token?id_token=true", nil, &tok); st != 200 {
			t.Fatalf("token read %d %v", st, tok)
		}
		if s, _ := tok["access_token"].(string); s == "" {
			t.Fatalf("no access token: %v", tok)
		}
		if s, _ := tok["id_token"].(string); s == "" {
			t.Fatalf("no id_token: %v", tok)
		}
		if tok["provider"] != "zitadel" || strings.ToLower(tok["token_type"].(string)) != "bearer" {
			t.Fatalf("token body %v", tok)
		}
		var conn map[string]any
		h.do("GET", "/connections/"+c.ConnectionID, nil, &conn)
		if conn["status"] != "active" || conn["subject"] == nil || conn["subject"] == "" || conn["issuer"] != op.Issuer {
			t.Fatalf("connection %v", conn)
		}
		// The example OP keeps e-mail out of the id_token; it comes from
		// userinfo, accepted because its sub matches the id_token's.
		if conn["email"] != "test-user@zitadel.ch" {
			t.Fatalf("email from userinfo: %v", conn["email"])
		}
		for _, secret := range []string{tok["access_token"].(string), tok["id_token"].(string), op.ClientSecret} {
			if strings.Contains(h.logs.String(), secret) {
				t.Fatal("a token or the client secret reached the logs")
			}
		}

		// Restart: a new broker on the same database reads everything back.
		h.start()
		stored, err := h.store.GetConnection(context.Background(), c.ConnectionID)
		if err != nil || stored.Status != storage.StatusActive {
			t.Fatalf("after restart: %v %v", stored.Status, err)
		}
		var again map[string]any
		if st := h.do("GET", "/connections/"+c.ConnectionID+"/token", nil, &again); st != 200 || again["access_token"] != tok["access_token"] {
			t.Fatalf("token after restart: %d", st)
		}
		var prov map[string]any
		if st := h.do("GET", "/providers/by-name/ZITADEL", nil, &prov); st != 200 || prov["has_client_secret"] != true {
			t.Fatalf("provider after restart: %d %v", st, prov)
		}
	})
}
