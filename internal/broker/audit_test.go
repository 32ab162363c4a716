package broker_test

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestAuditTrail(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, _ := setupFake(t, dbURL)
		var c consentResp
		h.do("POST", "/auth/consent-spec", map[string]any{"workspace_id": "w", "client_name": "agent-a",
			"provider_name": "fake", "return_url": returnURL}, &c)
		c.ProviderURL = h.visitStart(c.AuthURL).Header.Get("Location")
		h.callback(url.Values{"state": {c.State}, "code": {"c"}})
		var tok map[string]any
		h.do("GET", "/connections/"+c.ConnectionID+"/token?client_name=agent-a", nil, &tok)

		h.broker.FlushAudit()
		var out struct {
			Events []map[string]any `json:"events"`
		}
		if st := h.do("GET", "/audit?connection_id="+c.ConnectionID, nil, &out); st != 200 {
			t.Fatalf("audit %d", st)
		}
		var types []string
		for _, e := range out.Events {
			types = append(types, e["type"].(string))
			if e["actor"] != "agent-a" || e["client_ip"] != "127.0.0.1" {
				t.Errorf("event %v lacks actor or client ip", e)
			}
		}
		if strings.Join(types, ",") != "token.read,callback.succeeded,consent.created" {
			t.Fatalf("events newest first: %v", types)
		}
		raw := strings.ToLower(toJSON(out.Events))
		for _, secret := range []string{tok["access_token"].(string), "fake-refresh", "fake-secret-value", c.State} {
			if strings.Contains(raw, strings.ToLower(secret)) {
				t.Fatalf("audit rows hold a secret")
			}
		}
		future := h.clock.Now().Add(time.Hour).Format(time.RFC3339)
		h.do("GET", "/audit?since="+url.QueryEscape(future), nil, &out)
		if len(out.Events) != 0 {
			t.Fatalf("since filter: %d events", len(out.Events))
		}
		var env envelope
		if st := h.do("GET", "/audit?since=yesterday", nil, &env); st != 400 {
			t.Fatalf("bad since: %d", st)
		}
	})
}
