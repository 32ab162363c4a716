package delivery_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/webhook/delivery"
	"github.com/dromos-dev/dromos/internal/webhook/endpoint"
)

// A receiver that fails the first attempts gets every event once it
// answers 2xx, still in order: the second event is not sent before the
// first was delivered.
func TestRetriesInOrderUntilDelivered(t *testing.T) {
	e := newEnv(t, true)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 3 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	ep, _, err := e.mgr.Create(t.Context(), endpoint.Scope{Owner: "agent-a"}, rc.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	lifecycle(t, e.store, "conn-1", "agent-a")
	e.run(t, delivery.Config{Schedule: []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond}},
		delivery.NewClient(true))
	waitFor(t, "all four events delivered", 10*time.Second, func() bool {
		ds := deliveries(t, e.store, ep.ID)
		return len(ds) == 4 && !slices.ContainsFunc(ds, func(d storage.WebhookDelivery) bool { return d.State != storage.DeliveryDelivered })
	})
	var got []string
	for _, m := range rc.messages() {
		got = append(got, eventType(t, m.body))
	}
	want := []string{"conn-1 connection.active", "conn-1 connection.active", "conn-1 connection.active", "conn-1 connection.active",
		"conn-1 connection.scopes_changed", "conn-1 connection.reauth_required", "conn-1 connection.deleted"}
	if !slices.Equal(got, want) {
		t.Fatalf("requests in order:\n%v\nwant\n%v", got, want)
	}
	ds := deliveries(t, e.store, ep.ID)
	first := ds[len(ds)-1]
	if first.EventType != storage.LifecycleActive || first.Attempts != 4 || first.LastStatusCode != 200 || first.DeliveredAt.IsZero() {
		t.Errorf("first delivery = %+v, want 4 attempts ending in 200", first)
	}
	if got := metric(t, e, "dromos_webhook_deliveries_total", "retry"); got != 3 {
		t.Errorf("retries counted %v, want 3", got)
	}
}

// Slow, huge, redirecting receivers are handled by the limits, and a
// healthy endpoint gets its message meanwhile.
func TestHostileReceiversDoNotBlock(t *testing.T) {
	e := newEnv(t, true)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var slowEnded atomic.Bool
	slow := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		defer slowEnded.Store(true)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	var written atomic.Int64
	huge := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		chunk := make([]byte, 1<<20)
		for range 50 { // 50 MB
			if _, err := w.Write(chunk); err != nil {
				return
			}
			written.Add(int64(len(chunk)))
		}
	})
	target := newReceiver(t, nil)
	redirect := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	})
	healthy := newReceiver(t, nil)
	ids := map[string]string{}
	for name, rc := range map[string]*receiver{"slow": slow, "huge": huge, "redirect": redirect, "healthy": healthy} {
		ep, _, err := e.mgr.Create(t.Context(), endpoint.Scope{Owner: "agent-a"}, rc.URL, []string{"connection.active"})
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = ep.ID
	}
	lifecycle(t, e.store, "conn-1", "agent-a")
	const timeout = 4 * time.Second
	e.run(t, delivery.Config{Timeout: timeout, Workers: 4, Schedule: []time.Duration{time.Hour}}, delivery.NewClient(true))
	waitFor(t, "the healthy endpoint's delivery", 10*time.Second, func() bool { return len(healthy.messages()) == 1 })
	if slowEnded.Load() {
		t.Error("the healthy endpoint was served only after the slow one's attempt ended: it was blocked")
	}
	waitFor(t, "every attempt recorded", 20*time.Second, func() bool {
		for _, id := range ids {
			if ds := deliveries(t, e.store, id); len(ds) != 1 || ds[0].Attempts != 1 {
				return false
			}
		}
		return true
	})
	check := func(name string, state storage.WebhookDeliveryState, status int, class string) {
		t.Helper()
		d := deliveries(t, e.store, ids[name])[0]
		if d.State != state || d.LastStatusCode != status || d.LastError != class {
			t.Errorf("%s: delivery %s status %d error %q, want %s %d %q", name, d.State, d.LastStatusCode, d.LastError, state, status, class)
		}
	}
	check("healthy", storage.DeliveryDelivered, 204, "")
	check("huge", storage.DeliveryDelivered, 200, "")
	check("slow", storage.DeliveryPending, 0, "timeout")
	check("redirect", storage.DeliveryPending, 307, "redirect")
	if d := deliveries(t, e.store, ids["slow"])[0]; d.LastLatency < timeout || d.LastLatency > timeout+5*time.Second {
		t.Errorf("slow attempt took %v, want the %v timeout", d.LastLatency, timeout)
	}
	if n := len(target.messages()); n != 0 {
		t.Errorf("the redirect was followed: its target got %d requests", n)
	}
	if w := written.Load(); w >= 50<<20 {
		t.Errorf("the 50 MB answer was read to the end (%d bytes written)", w)
	}
}

// In production mode an endpoint whose URL is, or later resolves to, a
// private address is refused: at creation by the manager, at every dial by
// the client, and the receiver never sees a request.
func TestProductionGuardRefusesPrivateAddresses(t *testing.T) {
	prod := newEnv(t, false)
	for _, u := range []string{"http://127.0.0.1:8080/hooks", "https://127.0.0.1/hooks", "https://10.1.2.3/x",
		"https://169.254.169.254/latest", "https://[::1]/x", "https://user:pw@example.com/x", "ftp://example.com/x"} {
		_, _, err := prod.mgr.Create(t.Context(), endpoint.Scope{Owner: "agent-a"}, u, nil)
		if !errors.Is(err, endpoint.ErrBadURL) {
			t.Errorf("Create(%s) = %v, want ErrBadURL", u, err)
		}
	}
	if es, _ := prod.mgr.List(t.Context(), endpoint.Scope{Operator: true}); len(es) != 0 {
		t.Fatalf("refused endpoints were stored: %d", len(es))
	}

	// Registered while it looked fine (here: by a development manager),
	// it resolves to loopback at delivery time: the dial is refused.
	e := newEnv(t, true)
	rc := newReceiver(t, nil)
	ep, _, err := e.mgr.Create(t.Context(), endpoint.Scope{Owner: "agent-a"}, rc.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	lifecycle(t, e.store, "conn-1", "agent-a")
	e.run(t, delivery.Config{Schedule: []time.Duration{time.Hour}}, delivery.NewClient(false))
	waitFor(t, "the refused attempt", 5*time.Second, func() bool {
		ds := deliveries(t, e.store, ep.ID)
		return slices.ContainsFunc(ds, func(d storage.WebhookDelivery) bool { return d.Attempts > 0 })
	})
	d := deliveries(t, e.store, ep.ID)[3]
	if d.LastError != "blocked_address" || d.LastStatusCode != 0 || strings.Contains(d.LastError, "127.0.0.1") {
		t.Errorf("delivery = %+v, want blocked_address", d)
	}
	if n := len(rc.messages()); n != 0 {
		t.Errorf("the private receiver got %d requests", n)
	}
}

// An endpoint failing for longer than DisableAfter is disabled (audit
// event, metric); events keep queueing; re-enabling it replays them all,
// in order.
func TestDisabledEndpointReplaysWhenEnabled(t *testing.T) {
	e := newEnv(t, true)
	var up atomic.Bool
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	sc := endpoint.Scope{Owner: "agent-a"}
	ep, _, err := e.mgr.Create(t.Context(), sc, rc.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	lifecycle(t, e.store, "conn-1", "agent-a")
	sched := slices.Repeat([]time.Duration{30 * time.Millisecond}, 100)
	e.run(t, delivery.Config{Schedule: sched, DisableAfter: 200 * time.Millisecond}, delivery.NewClient(true))
	waitFor(t, "the endpoint disabled", 10*time.Second, func() bool {
		got, err := e.mgr.Get(t.Context(), sc, ep.ID)
		return err == nil && !got.Enabled
	})
	got, _ := e.mgr.Get(t.Context(), sc, ep.ID)
	if got.DisabledReason != "failing" {
		t.Errorf("disabled reason %q", got.DisabledReason)
	}
	if v := metric(t, e, "dromos_webhook_endpoints_disabled_total", ""); v != 1 {
		t.Errorf("dromos_webhook_endpoints_disabled_total = %v, want 1", v)
	}
	audits := e.audit.all()
	if len(audits) != 1 || audits[0].Type != "webhook.endpoint_disabled" || audits[0].Detail["endpoint_id"] != ep.ID {
		t.Errorf("audit = %+v", audits)
	}
	before := len(rc.messages())
	lifecycle(t, e.store, "conn-2", "agent-a")
	time.Sleep(200 * time.Millisecond)
	if n := len(rc.messages()); n != before {
		t.Fatalf("a disabled endpoint got %d more requests", n-before)
	}
	up.Store(true)
	if _, err := e.mgr.Enable(t.Context(), sc, ep.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the backlog replayed", 10*time.Second, func() bool {
		for _, d := range deliveries(t, e.store, ep.ID) {
			if d.State != storage.DeliveryDelivered {
				return false
			}
		}
		return true
	})
	perConn := map[string][]string{}
	for _, m := range rc.messages()[before:] {
		conn, typ, _ := strings.Cut(eventType(t, m.body), " ")
		perConn[conn] = append(perConn[conn], typ)
	}
	want := []string{"connection.active", "connection.scopes_changed", "connection.reauth_required", "connection.deleted"}
	for _, conn := range []string{"conn-1", "conn-2"} {
		if !slices.Equal(perConn[conn], want) {
			t.Errorf("%s replayed %v, want %v", conn, perConn[conn], want)
		}
	}
}
