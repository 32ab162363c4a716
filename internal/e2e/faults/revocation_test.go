package faults_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestRevocationSurvivesOutageAndCrash (issue 20): a connection is deleted
// while the provider's revocation endpoint answers 503, and stays so for
// 30 s; the broker that took the deletion is killed meanwhile. The
// connection is gone for agents at once, and the surviving replica revokes
// the grant after the provider recovers: exactly once, audited.
func TestRevocationSurvivesOutageAndCrash(t *testing.T) {
	t.Parallel()
	db := postgresURL(t)
	s := newSecrets(t)
	env := func(ports []int) []string {
		return append(brokerEnv(db, s)(ports), "REVOCATION_MIN_BACKOFF=1s", "REVOCATION_MAX_BACKOFF=2s")
	}
	brokers := []*proc{launch(t, "broker-1", "broker", 1, "/ready", env), launch(t, "broker-2", "broker", 1, "/ready", env)}
	p := newFakeProvider(t, providerBehaviour{codeTTL: 3600, refreshTTL: 3600})
	prof := p.profile("revoking")
	prof["revocation_url"] = p.srv.URL + "/revoke"
	a := must(t, newClient(10*time.Second), "POST", brokers[0].url+"/providers", "", map[string]any{"profile": prof})
	if a.status != http.StatusCreated {
		t.Fatalf("registering provider: %d %s", a.status, a.body)
	}
	id := connect(t, brokers[0], "revoking")
	rt := p.lastRefreshToken()

	p.set(func(b *providerBehaviour) { b.revocationDown = true })
	outageEnds := time.Now().Add(30 * time.Second)
	hc := newClient(10 * time.Second)
	if a := must(t, hc, "DELETE", brokers[0].url+"/connections/"+id, "", nil); a.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", a.status, a.body)
	}
	for _, b := range brokers {
		if a := must(t, hc, "GET", b.url+"/connections/"+id+"/token", "", nil); a.status != http.StatusNotFound {
			t.Fatalf("token read on %s right after the delete: %d, want 404", b.name, a.status)
		}
	}
	// Both replicas get to retry before one of them dies.
	if !eventually(t.Context(), 10*time.Second, func() bool { return p.revocationsRefused.Load() >= 3 }) {
		t.Fatalf("only %d revocation attempts during the outage", p.revocationsRefused.Load())
	}
	brokers[0].kill()
	time.Sleep(time.Until(outageEnds))
	refused := p.revocationsRefused.Load()
	p.set(func(b *providerBehaviour) { b.revocationDown = false })

	if !eventually(t.Context(), 20*time.Second, func() bool { return p.revocations()[rt] > 0 }) {
		t.Fatalf("grant not revoked 20 s after the provider recovered (%d attempts refused)", refused)
	}
	// Give a wrong second attempt time to happen (several backoffs).
	time.Sleep(5 * time.Second)
	if got := p.revocations(); got[rt] != 1 || len(got) != 1 {
		t.Fatalf("provider revocations %s, want the refresh token exactly once", redactCounts(got, p.prefix))
	}
	live := brokers[1]
	if n := metric(t, live, `dromos_revocations_total{outcome="yes"}`); n != 1 {
		t.Errorf("%s counted %v successful revocations, want 1", live.name, n)
	}
	if n := metric(t, live, "dromos_revocations_pending"); n != 0 {
		t.Errorf("%s reports %v pending revocations, want 0", live.name, n)
	}
	var audit struct {
		Events []struct {
			Type   string            `json:"type"`
			Detail map[string]string `json:"detail"`
		} `json:"events"`
	}
	a = must(t, hc, "GET", live.url+"/audit?connection_id="+id, "", nil)
	if err := json.Unmarshal(a.body, &audit); err != nil {
		t.Fatalf("audit: %v", err)
	}
	var types []string
	ok := false
	for _, e := range audit.Events {
		types = append(types, e.Type)
		if e.Type == "revocation.succeeded" && e.Detail["attempts"] != "" && e.Detail["attempts"] != "1" {
			ok = true
		}
		if e.Type == "connection.deleted" && e.Detail["revoked_at_provider"] != "pending" {
			t.Errorf("connection.deleted says revoked_at_provider=%q, want pending", e.Detail["revoked_at_provider"])
		}
	}
	if !ok {
		t.Errorf("audit of %s: %v, want revocation.succeeded after several attempts", id, types)
	}
	t.Logf("%d attempts refused during the outage; %s", refused, fmt.Sprint(types))
	assertNoLeak(t, p.secrets(), brokers...)
}
