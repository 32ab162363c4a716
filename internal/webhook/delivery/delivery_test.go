package delivery_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/webhook/delivery"
	"github.com/dromos-dev/dromos/internal/webhook/endpoint"
	"github.com/dromos-dev/dromos/sdk"
)

// Every message is verified twice, by code Dromos did not write for it:
// the standardwebhooks npm package (the specification's reference library)
// and the Go SDK's VerifyWebhook. The endpoint's secret was rotated before
// the messages went out, so each carries two signatures and both the old
// and the new secret verify it.
func TestEveryDeliveryVerifies(t *testing.T) {
	e := newEnv(t, true)
	recvA := newReceiver(t, nil)
	recvB := newReceiver(t, nil)
	epA, oldSecret, err := e.mgr.Create(t.Context(), endpoint.Scope{Owner: "agent-a"}, recvA.URL+"/hooks", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.mgr.Create(t.Context(), endpoint.Scope{Owner: "agent-b"}, recvB.URL, nil); err != nil {
		t.Fatal(err)
	}
	const conns = 5
	for i := range conns {
		lifecycle(t, e.store, fmt.Sprintf("conn-%d", i), "agent-a")
	}
	_, newSecret, err := e.mgr.RotateSecret(t.Context(), endpoint.Scope{Owner: "agent-a"}, epA.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.run(t, delivery.Config{}, delivery.NewClient(true))
	waitFor(t, "20 deliveries", 10*time.Second, func() bool { return len(recvA.messages()) >= conns*4 })
	time.Sleep(100 * time.Millisecond)
	msgs := recvA.messages()
	if len(msgs) != conns*4 {
		t.Fatalf("%d messages, want %d (each exactly once while the receiver answers 204)", len(msgs), conns*4)
	}
	if n := len(recvB.messages()); n != 0 {
		t.Fatalf("agent-b's endpoint got %d of agent-a's events", n)
	}

	ids := map[string]bool{}
	perConn := map[string][]string{}
	for _, m := range msgs {
		for _, s := range []string{oldSecret.Reveal(), newSecret.Reveal()} {
			ev, err := sdk.VerifyWebhook(s, m.header, m.body, 0)
			if err != nil {
				t.Fatalf("sdk.VerifyWebhook: %v", err)
			}
			if ev.Data.ClientName != "agent-a" {
				t.Errorf("event for %q", ev.Data.ClientName)
			}
		}
		if id := m.header.Get("webhook-id"); ids[id] || !strings.HasPrefix(id, "msg_") {
			t.Errorf("webhook-id %q repeated or malformed", id)
		} else {
			ids[id] = true
		}
		if bytes.Contains(m.body, []byte("whsec_")) || m.header.Get("Content-Type") != "application/json" {
			t.Errorf("message %s: secret in body or wrong content type", m.body)
		}
		k := eventType(t, m.body)
		conn, typ, _ := strings.Cut(k, " ")
		perConn[conn] = append(perConn[conn], typ)
	}
	want := []string{"connection.active", "connection.scopes_changed", "connection.reauth_required", "connection.deleted"}
	for conn, got := range perConn {
		if !slices.Equal(got, want) {
			t.Errorf("%s: events in order %v, want %v", conn, got, want)
		}
	}

	// The reference library: every message under both secrets, and a
	// tampered copy that it must refuse (so this judge can fail).
	tampered := message{header: msgs[0].header, body: bytes.Replace(msgs[0].body, []byte("agent-a"), []byte("agent-b"), 1)}
	for _, s := range []string{oldSecret.Reveal(), newSecret.Reveal()} {
		res := referenceVerify(t, s, append(slices.Clone(msgs), tampered))
		for i, r := range res[:len(msgs)] {
			if !r.OK || !strings.HasPrefix(r.Type, "connection.") {
				t.Errorf("standardwebhooks refused message %d: %+v", i, r)
			}
		}
		if res[len(msgs)].OK {
			t.Errorf("standardwebhooks accepted a tampered body")
		}
	}
	if got := metric(t, e, "dromos_webhook_deliveries_total", "delivered"); got != conns*4 {
		t.Errorf("dromos_webhook_deliveries_total{result=delivered} = %v, want %d", got, conns*4)
	}
}

// metric returns the value of the named counter or gauge (with the given
// result label, if any) in e's registry.
func metric(t *testing.T, e *env, name, result string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if result != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != result) {
				continue
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("metric %s{%s} not found", name, result)
	return 0
}
