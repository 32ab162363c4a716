package faults_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/storage/postgres"
)

// leaseTTL is the broker's refresh lease (docs/LIFECYCLE.md): a crashed
// holder blocks others at most this long.
const leaseTTL = 30 * time.Second

// TestKillDuringRefresh: the broker holding a connection's refresh lease is
// killed with SIGKILL while the provider call is in flight. Another broker
// takes over once the lease runs out; the connection stays active and its
// stored token still opens.
func TestKillDuringRefresh(t *testing.T) {
	t.Parallel()
	db := postgresURL(t)
	s := newSecrets(t)
	brokers := startBrokers(t, 2, db, s)
	holder, survivor := brokers[0], brokers[1]
	p := newFakeProvider(t, providerBehaviour{codeTTL: 1, refreshTTL: 3600, refreshDelay: 2 * time.Second, rotate: true})
	register(t, holder, p, "crashy")
	id := connect(t, holder, "crashy")
	old := p.lastAccessToken()
	time.Sleep(1100 * time.Millisecond) // the token expires

	// The read on holder claims the lease and waits on the provider.
	go func() {
		_, _ = send(context.Background(), newClient(30*time.Second), "GET", holder.url+"/connections/"+id+"/token", "", nil)
	}()
	if !eventually(context.Background(), 20*time.Second, func() bool { return p.refreshInFlight.Load() == 1 }) {
		t.Fatal("the refresh never reached the provider")
	}
	holder.kill()
	// The provider sees the caller hang up: the refresh was never completed,
	// so the rotating refresh token it carried was not consumed.
	if !eventually(context.Background(), 10*time.Second, func() bool { return p.aborted.Load() == 1 }) {
		t.Fatal("the killed broker's refresh was not the one in flight")
	}
	p.set(func(b *providerBehaviour) { b.refreshDelay = 0 })

	start := time.Now()
	a := must(t, newClient(leaseTTL+30*time.Second), "GET", survivor.url+"/connections/"+id+"/token", "", nil)
	waited := time.Since(start)
	t.Logf("survivor answered %d after %s (lease %s)", a.status, waited.Round(100*time.Millisecond), leaseTTL)
	if a.status != http.StatusOK || a.str("access_token") == "" || a.str("access_token") == old {
		t.Fatalf("survivor read: %d %s", a.status, a.body)
	}
	if waited > leaseTTL+15*time.Second {
		t.Fatalf("the dead holder blocked the connection for %s", waited)
	}
	if c := status(t, survivor, id); c["status"] != "active" {
		t.Fatalf("connection after the crash: %v", c)
	}
	stored := storedToken(t, survivor, id)
	if stored.status != http.StatusOK || stored.str("access_token") != a.str("access_token") {
		t.Fatalf("stored token: %d %s", stored.status, stored.body)
	}
	if p.reused.Load() != 0 || p.refreshes.Load() != 2 {
		t.Fatalf("provider: %d refreshes, %d with a consumed refresh token", p.refreshes.Load(), p.reused.Load())
	}
	assertNoLeak(t, p.secrets(), brokers...)
}

// TestKillDuringCallback: the broker handling a callback is killed with
// SIGKILL while it exchanges the code. The connection is left `exchanging`
// with no token: reads answer 409 not_ready, replaying the callback on
// another broker is refused, and the worker of any broker fails it as
// `exchange_interrupted` once it has been exchanging for 2 minutes
// (15 minutes after the consent: checked by running the worker's clean-up
// pass in-process with a clock set later, not by waiting).
func TestKillDuringCallback(t *testing.T) {
	t.Parallel()
	db := postgresURL(t)
	s := newSecrets(t)
	brokers := startBrokers(t, 2, db, s)
	victim, survivor := brokers[0], brokers[1]
	p := newFakeProvider(t, providerBehaviour{codeTTL: 3600, exchangeDelay: 2 * time.Second})
	register(t, victim, p, "slowcode")

	consented := time.Now()
	c := requestConsent(t, victim, "slowcode")
	br := browser(t)
	startFlow(t, br, c, victim)
	done := make(chan error, 1)
	go func() {
		_, err := send(context.Background(), br, "GET", callbackURL(victim, c), "", nil)
		done <- err
	}()
	if !eventually(context.Background(), 20*time.Second, func() bool { return p.exchInFlight.Load() == 1 }) {
		t.Fatal("the code exchange never reached the provider")
	}
	victim.kill()
	if err := <-done; err == nil {
		t.Fatal("the browser got an answer from a killed broker")
	}
	// The provider never completed the exchange: its caller hung up.
	if !eventually(context.Background(), 10*time.Second, func() bool { return p.aborted.Load() == 1 }) {
		t.Fatal("the killed broker's exchange was not the one in flight")
	}

	conn := status(t, survivor, c.ConnectionID)
	if conn["status"] != "exchanging" {
		t.Fatalf("connection after the crash: %v", conn)
	}
	read := must(t, newClient(10*time.Second), "GET", survivor.url+"/connections/"+c.ConnectionID+"/token", "", nil)
	if read.status != http.StatusConflict || read.str("code") != "not_ready" {
		t.Fatalf("token read of the interrupted connection: %d %s", read.status, read.body)
	}
	// The user retries the callback on another replica: refused, nothing changes.
	retry := must(t, br, "GET", callbackURL(survivor, c), "", nil)
	if retry.status != http.StatusBadRequest {
		t.Fatalf("callback replayed on the survivor: %d", retry.status)
	}

	ctx := context.Background()
	store, err := postgres.Open(ctx, db, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.GetToken(ctx, c.ConnectionID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("token row of the interrupted connection: %v", err)
	}
	if got := status(t, survivor, c.ConnectionID); got["status"] != "exchanging" || p.exchanges.Load() != 1 {
		t.Fatalf("after the replay: %v, %d exchanges", got, p.exchanges.Load())
	}

	// The worker's clean-up, run as a replica would run it later: left
	// alone while the exchange could still be running (2 minutes), failed
	// as exchange_interrupted after that.
	for _, tc := range []struct {
		name  string
		after time.Duration
		want  string
	}{
		{"1 minute later", time.Minute, "exchanging"},
		{"3 minutes later", 3 * time.Minute, "failed"},
	} {
		later := brokerAt(t, store, s, func() time.Time { return consented.Add(tc.after) })
		if _, err := later.CleanupPending(ctx); err != nil {
			t.Fatalf("%s: clean-up pass: %v", tc.name, err)
		}
		if got := status(t, survivor, c.ConnectionID); got["status"] != tc.want {
			t.Fatalf("%s: %v", tc.name, got)
		}
	}
	if got := status(t, survivor, c.ConnectionID); got["status_reason"] != "exchange_interrupted" {
		t.Fatalf("interrupted exchange failed with %v", got)
	}
	read = must(t, newClient(10*time.Second), "GET", survivor.url+"/connections/"+c.ConnectionID+"/token", "", nil)
	if read.status != http.StatusConflict || read.str("code") != "reauth_required" {
		t.Fatalf("token read after the clean-up: %d %s", read.status, read.body)
	}
	assertNoLeak(t, p.secrets(), brokers...)
}
