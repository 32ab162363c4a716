package faults_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/sdk"
)

// revokeGrants makes the provider forget every refresh token it issued:
// the next refresh of any connection answers invalid_grant, as when a user
// revokes access at the provider.
func (p *fakeProvider) revokeGrants() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.valid)
}

// hookReceiver is an agent's webhook endpoint on a port reserved up front:
// down (nothing listens) until start, then 500 until healthyAt, then 200
// after a short delay, so deliveries are in flight when a broker dies.
type hookReceiver struct {
	port      int
	secret    atomic.Pointer[string]
	healthyAt atomic.Pointer[time.Time]
	srv       *http.Server

	mu        sync.Mutex
	got       []hookMsg // answered 200
	refused   int       // answered 500
	badSigned []error
}

type hookMsg struct {
	id, ts, sig string
	body        []byte
	ev          *sdk.WebhookEvent
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if time.Now().Before(*h.healthyAt.Load()) {
		h.mu.Lock()
		h.refused++
		h.mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	time.Sleep(30 * time.Millisecond)
	ev, err := sdk.VerifyWebhook(*h.secret.Load(), r.Header, body, 0)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.badSigned = append(h.badSigned, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.got = append(h.got, hookMsg{id: r.Header.Get("webhook-id"), ts: r.Header.Get("webhook-timestamp"),
		sig: r.Header.Get("webhook-signature"), body: body, ev: ev})
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(h.port))
	if err != nil {
		t.Fatalf("receiver port taken meanwhile: %v", err)
	}
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = h.srv.Serve(ln) }()
	t.Cleanup(func() { h.srv.Close() })
}

func (h *hookReceiver) snapshot() []hookMsg {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// TestWebhooksSurviveOutageAndBrokerKill: two brokers on one PostgreSQL
// produce 200 lifecycle events (consents, denials, a forced invalid_grant,
// deletions) while the agent's receiver is down for 20 s, then answers 500,
// then 200; one broker is killed with SIGKILL while deliveries are in
// flight. Every event arrives, each webhook-id once after de-duplication,
// in order per connection, every message verified by sdk.VerifyWebhook
// and then by the standardwebhooks npm package.
func TestWebhooksSurviveOutageAndBrokerKill(t *testing.T) {
	t.Parallel()
	db := postgresURL(t)
	s := newSecrets(t)
	env := func(ports []int) []string {
		return append(brokerEnv(db, s)(ports), "WEBHOOK_TIMEOUT=2s", "WEBHOOK_RETRY_MAX_WAIT=4s")
	}
	brokers := []*proc{launch(t, "broker-1", "broker", 1, "/ready", env)}
	brokers = append(brokers, launch(t, "broker-2", "broker", 1, "/ready", env))
	p := newFakeProvider(t, providerBehaviour{codeTTL: 3600, refreshTTL: 3600})
	register(t, brokers[0], p, "hooked")

	rc := &hookReceiver{port: freePort(t)}
	far := time.Now().Add(time.Hour)
	rc.healthyAt.Store(&far)
	hc := newClient(10 * time.Second)
	a := must(t, hc, "POST", brokers[0].url+"/webhooks?client_name="+agentName, "", map[string]any{
		"url": fmt.Sprintf("http://127.0.0.1:%d/hook", rc.port)})
	var ep struct{ ID, Secret string }
	if a.status != http.StatusCreated || json.Unmarshal(a.body, &ep) != nil || ep.Secret == "" {
		t.Fatalf("create webhook: %d %s", a.status, a.body)
	}
	rc.secret.Store(&ep.Secret)
	down := time.Now()

	// 50 connections: consent, invalid_grant found by a refresh, deletion
	// (3 events each); 50 denied consents (1 event each).
	want := map[string][]string{}
	for i := range 50 {
		b := brokers[i%2]
		id := connect(t, b, "hooked")
		p.revokeGrants()
		if a := must(t, hc, "POST", b.url+"/connections/"+id+"/refresh", "", nil); a.status != http.StatusConflict {
			t.Fatalf("refresh after revocation: %d %s", a.status, a.body)
		}
		if a := must(t, hc, "DELETE", brokers[(i+1)%2].url+"/connections/"+id, "", nil); a.status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", a.status, a.body)
		}
		want[id] = []string{"connection.active", "connection.reauth_required", "connection.deleted"}

		c := requestConsent(t, b, "hooked")
		br := browser(t)
		startFlow(t, br, c, b)
		denied := b.url + "/auth/callback?state=" + c.State + "&error=access_denied"
		if a := must(t, br, "GET", denied, "", nil); a.status != http.StatusFound {
			t.Fatalf("denied callback: %d", a.status)
		}
		want[c.ConnectionID] = []string{"connection.failed"}
	}
	total := 0
	for _, w := range want {
		total += len(w)
	}
	if total != 200 {
		t.Fatalf("produced %d events, want 200", total)
	}
	t.Logf("200 events produced in %v", time.Since(down).Round(time.Millisecond))

	// Down for 20 s, then 500 for 8 s, then healthy.
	time.Sleep(time.Until(down.Add(20 * time.Second)))
	healthy := time.Now().Add(8 * time.Second)
	rc.healthyAt.Store(&healthy)
	rc.start(t)

	// SIGKILL broker-1 once deliveries flow, while it holds some.
	if !eventually(t.Context(), 60*time.Second, func() bool { return len(rc.snapshot()) >= 20 }) {
		t.Fatalf("no deliveries after the receiver recovered (refused %d)", rc.refused)
	}
	brokers[0].kill()
	t.Logf("broker-1 killed after %d deliveries", len(rc.snapshot()))

	firsts := func() (map[string]hookMsg, map[string][]string) {
		seen, order := map[string]hookMsg{}, map[string][]string{}
		for _, m := range rc.snapshot() {
			if _, dup := seen[m.id]; dup {
				continue
			}
			seen[m.id] = m
			order[m.ev.Data.ConnectionID] = append(order[m.ev.Data.ConnectionID], m.ev.Type)
		}
		return seen, order
	}
	if !eventually(t.Context(), 90*time.Second, func() bool { seen, _ := firsts(); return len(seen) >= 200 }) {
		seen, _ := firsts()
		t.Fatalf("%d of 200 events arrived", len(seen))
	}
	time.Sleep(2 * time.Second) // let late duplicates land before counting
	seen, order := firsts()
	all := rc.snapshot()
	rc.mu.Lock()
	refused, bad := rc.refused, rc.badSigned
	rc.mu.Unlock()
	t.Logf("%d messages answered 200 (%d duplicates), %d answered 500, %d unique", len(all), len(all)-len(seen), refused, len(seen))
	if len(bad) > 0 {
		t.Fatalf("sdk.VerifyWebhook refused %d messages: %v", len(bad), bad[0])
	}
	if len(seen) != 200 {
		t.Fatalf("%d unique webhook-ids, want 200", len(seen))
	}
	for id, w := range want {
		if !slices.Equal(order[id], w) {
			t.Errorf("connection %s: events %v, want %v", id, order[id], w)
		}
	}
	if refused == 0 {
		t.Error("the receiver never answered 500: the retry phase did not happen")
	}

	// The reference library verifies every unique message in one run.
	verifyAllWithReference(t, ep.Secret, seen)
	assertNoLeak(t, append(p.secrets(), ep.Secret), brokers...)
}

func verifyAllWithReference(t *testing.T, secret string, msgs map[string]hookMsg) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(t, "node not found: verifying with the standardwebhooks npm package needs Node.js")
	}
	dir, _ := filepath.Abs(filepath.Join("..", "..", "..", "test", "webhooks"))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks", "package.json")); err != nil {
		skipOrFail(t, "test/webhooks/node_modules missing: run (cd test/webhooks && npm ci)")
	}
	var in []map[string]any
	for _, m := range msgs {
		// Verified at the test's end: a tolerance of 5 minutes covers it.
		in = append(in, map[string]any{"secret": secret, "body_base64": base64.StdEncoding.EncodeToString(m.body),
			"headers": map[string]string{"webhook-id": m.id, "webhook-timestamp": m.ts, "webhook-signature": m.sig}})
	}
	raw, _ := json.Marshal(in)
	cmd := exec.Command(node, filepath.Join(dir, "verify-all.mjs"))
	cmd.Dir, cmd.Stdin = dir, bytes.NewReader(raw)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("verify-all.mjs: %v", err)
	}
	var res []struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(msgs) {
		t.Fatalf("verify-all.mjs answered %d results (%v), want %d", len(res), err, len(msgs))
	}
	for i, r := range res {
		if !r.OK {
			t.Fatalf("standardwebhooks refused message %d: %s", i, r.Error)
		}
	}
	t.Logf("standardwebhooks verified all %d messages", len(res))
}
