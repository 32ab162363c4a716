package broker_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/broker"
	"github.com/dromos-dev/dromos/internal/storage"
)

func sqliteURL(t *testing.T) string { return "sqlite:" + t.TempDir() + "/dromos.db" }

func TestConsentBadInput(t *testing.T) {
	h, f := setupFake(t, sqliteURL(t))
	cases := []struct {
		name   string
		body   any
		status int
		code   string
		msg    string
	}{
		{"unknown provider", map[string]any{"workspace_id": "w", "provider_name": "nope", "return_url": returnURL}, 404, "not_found", "provider"},
		{"malformed JSON", `{"workspace_id":`, 400, "bad_request", "JSON"},
		{"unknown field", map[string]any{"workspace_id": "w", "provider_name": "fake", "return_url": returnURL, "evil": true}, 400, "bad_request", "unknown field"},
		{"missing workspace", map[string]any{"provider_name": "fake", "return_url": returnURL}, 400, "bad_request", "workspace_id"},
		{"relative return_url", map[string]any{"workspace_id": "w", "provider_name": "fake", "return_url": "/done"}, 400, "bad_request", "return_url"},
		{"javascript return_url", map[string]any{"workspace_id": "w", "provider_name": "fake", "return_url": "javascript:alert(1)"}, 400, "bad_request", "return_url"},
		{"scope with space", map[string]any{"workspace_id": "w", "provider_name": "fake", "return_url": returnURL, "scopes": []string{"a b"}}, 400, "bad_request", "scope"},
		{"over-large body", `{"workspace_id":"` + strings.Repeat("a", 2<<20) + `"}`, 413, "too_large", "larger"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var env envelope
			st := h.do("POST", "/auth/consent-spec", tc.body, &env)
			if st != tc.status || env.Code != tc.code || !strings.Contains(env.Message, tc.msg) {
				t.Fatalf("got %d %+v", st, env)
			}
			conns, err := h.store.ListConnections(context.Background(), storage.ConnectionFilter{})
			if err != nil || len(conns) != 0 {
				t.Fatalf("bad input created connections: %d %v", len(conns), err)
			}
		})
	}
	if f.calls.Load() != 0 {
		t.Fatal("provider called")
	}
}

func TestProviderRegistry(t *testing.T) {
	h, f := setupFake(t, sqliteURL(t))
	var created map[string]any
	p := f.profile("Second")
	p["aliases"] = []string{"Two", "deux"}
	if st := h.do("POST", "/providers", map[string]any{"profile": p}, &created); st != 201 {
		t.Fatalf("create %d %v", st, created)
	}
	if created["name"] != "second" || created["client_secret"] != nil || created["has_client_secret"] != true {
		t.Fatalf("created %v", created)
	}
	id := created["id"].(string)

	var env envelope
	dup := f.profile("TWO")
	if st := h.do("POST", "/providers", map[string]any{"profile": dup}, &env); st != 409 || env.Code != "already_exists" {
		t.Fatalf("alias clash: %d %+v", st, env)
	}
	var bad struct {
		envelope
		Problems []string `json:"problems"`
	}
	if st := h.do("POST", "/providers", map[string]any{"profile": map[string]any{"name": "x y"}}, &bad); st != 400 || len(bad.Problems) < 3 {
		t.Fatalf("validation: %d %+v", st, bad)
	}
	var got map[string]any
	if st := h.do("GET", "/providers/by-name/DEUX", nil, &got); st != 200 || got["id"] != id {
		t.Fatalf("by alias: %d %v", st, got)
	}
	// Update without a secret keeps the stored one.
	upd := f.profile("second")
	delete(upd, "client_secret")
	upd["display_name"] = "Second Provider"
	if st := h.do("PUT", "/providers/"+id, map[string]any{"profile": upd}, &got); st != 200 || got["display_name"] != "Second Provider" || got["has_client_secret"] != true {
		t.Fatalf("update: %d %v", st, got)
	}
	var list struct {
		Providers []map[string]any `json:"providers"`
	}
	if st := h.do("GET", "/providers", nil, &list); st != 200 || len(list.Providers) != 2 {
		t.Fatalf("list: %d %v", st, list)
	}
	for _, pr := range list.Providers {
		if pr["client_secret"] != nil {
			t.Fatal("secret listed")
		}
	}
	if st := h.do("DELETE", "/providers/"+id, nil, nil); st != 204 {
		t.Fatalf("delete %d", st)
	}
	if st := h.do("GET", "/providers/"+id, nil, &env); st != 404 || env.Code != "not_found" {
		t.Fatalf("after delete %d", st)
	}
	if st := h.do("GET", "/providers/not-a-uuid", nil, &env); st != 404 {
		t.Fatalf("bad id %d", st)
	}
	if strings.Contains(h.logs.String(), "fake-secret-value") {
		t.Fatal("client secret in logs")
	}
}

func TestConnectionReadsAndOwnership(t *testing.T) {
	h, _ := setupFake(t, sqliteURL(t))
	var c consentResp
	h.do("POST", "/auth/consent-spec", map[string]any{"workspace_id": "w", "client_name": "agent-a",
		"provider_name": "fake", "return_url": returnURL}, &c)
	var env envelope
	if st := h.do("GET", "/connections/"+c.ConnectionID+"/token", nil, &env); st != 409 || env.Code != "not_ready" {
		t.Fatalf("pending token read: %d %+v", st, env)
	}
	var conn map[string]any
	if st := h.do("GET", "/connections/"+c.ConnectionID+"?client_name=agent-a", nil, &conn); st != 200 || conn["status"] != "pending" {
		t.Fatalf("owner read: %d %v", st, conn)
	}
	if st := h.do("GET", "/connections/"+c.ConnectionID+"?client_name=agent-b", nil, &env); st != 404 {
		t.Fatalf("other client read: %d", st)
	}
	if st := h.do("GET", "/connections/00000000-0000-4000-8000-000000000000", nil, &env); st != 404 {
		t.Fatalf("unknown: %d", st)
	}
	if st := h.do("DELETE", "/connections/"+c.ConnectionID, nil, nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	if st := h.do("GET", "/connections/"+c.ConnectionID, nil, &env); st != 404 {
		t.Fatalf("after delete: %d", st)
	}
}

func TestAPIKeyGuard(t *testing.T) {
	key := "k-123"
	h := newHarness(t, sqliteURL(t), func(c *broker.Config) {
		c.RequireAPIKey = true
		c.APIKeys = [][32]byte{sha(key)}
	})
	var env envelope
	if st := h.do("GET", "/providers", nil, &env); st != 401 || env.Code != "unauthorized" {
		t.Fatalf("no key: %d", st)
	}
	for _, hdr := range []http.Header{{"X-Api-Key": {key}}, {"Authorization": {"Bearer " + key}}, {"Authorization": {"bearer " + key}}, {"Authorization": {"BEARER " + key}}} {
		req, _ := http.NewRequest("GET", h.srv.URL+"/providers", nil)
		req.Header = hdr
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("with key: %v %v", resp.StatusCode, err)
		}
		resp.Body.Close()
	}
	// One credential per request: a second, different key (or the same
	// header twice) is ambiguous, even when one of them is right.
	for _, hdr := range []http.Header{
		{"X-Api-Key": {key, "other"}},
		{"X-Api-Key": {key, key}},
		{"Authorization": {"Bearer " + key, "Bearer other"}},
		{"Authorization": {"Bearer other"}, "X-Api-Key": {key}},
		{"Authorization": {"Bearer " + key}, "X-Api-Key": {"other"}},
	} {
		req, _ := http.NewRequest("GET", h.srv.URL+"/providers", nil)
		req.Header = hdr
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 401 {
			t.Fatalf("%v: %v %v", hdr, resp.StatusCode, err)
		}
		resp.Body.Close()
	}
	for _, open := range []string{"/health", "/ready", "/metrics"} {
		if st := h.do("GET", open, nil, nil); st != 200 {
			t.Fatalf("%s guarded: %d", open, st)
		}
	}
}
