package broker_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/broker"
	"github.com/dromos-dev/dromos/internal/devicepoll"
	"github.com/dromos-dev/dromos/internal/storage"
)

// The device poller's behaviour under failure and load: back-off,
// shutdown, deletion mid-poll, the provider budget and the claim lease.
// The fake authorization server is deviceAS (device_poll_test.go).

// TestDevicePollBacksOff: a failed poll (HTTP 503, as for a connection
// timeout) doubles the stored interval, 2 s → 4 s → 8 s (RFC 8628 §3.5),
// so no replica polls again sooner; the OAuth answers that follow keep the
// longer interval and the grant still completes.
func TestDevicePollBacksOff(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL)
		as := newDeviceAS(t, 2, 600, "http:503", "http:503", "authorization_pending")
		as.register(h)
		id, _ := h.deviceConsent("fake-device")
		ctx := context.Background()
		step := func(advance time.Duration, wantPolls, wantInterval int) {
			t.Helper()
			h.clock.Advance(advance)
			if _, err := h.broker.PollDevices(ctx); err != nil {
				t.Fatal(err)
			}
			if n := len(as.pollTimes()); n != wantPolls {
				t.Fatalf("after %v more: provider saw %d polls, want %d", advance, n, wantPolls)
			}
			if wantInterval == 0 {
				return
			}
			if g, err := h.store.GetDeviceGrant(ctx, id); err != nil || g.IntervalSeconds != wantInterval {
				t.Fatalf("grant %+v %v, want interval %d", g, err, wantInterval)
			}
		}
		step(2*time.Second, 1, 4) // 503: 2 s doubled
		step(3*time.Second, 1, 4) // not due yet
		step(time.Second, 2, 8)   // 503 again: doubled again
		step(7*time.Second, 2, 8) // not due yet
		step(time.Second, 3, 8)   // authorization_pending keeps the interval
		step(8*time.Second, 4, 0) // the token
		if st := h.status(id); st != storage.StatusActive {
			t.Fatalf("connection %s after the token", st)
		}
	})
}

// TestDevicePollShutdown: the worker is stopped while a poll is in flight
// at the provider. RunWorker returns only after that poll's token is
// stored (the caller closes the store next, and the device code is spent),
// and a second grant claimed in the same pass but not yet polled is handed
// back due at once, not left under the 2-minute lease.
func TestDevicePollShutdown(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, func(c *broker.Config) {
			c.DevicePoll = devicepoll.Options{Tick: 50 * time.Millisecond, Parallel: 1}
		})
		as := newDeviceAS(t, 2, 600)
		as.hold = make(chan struct{})
		as.register(h)
		first, _ := h.deviceConsent("fake-device")
		second, _ := h.deviceConsent("fake-device")
		h.clock.Advance(3 * time.Second)

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); h.broker.RunWorker(ctx, broker.WorkerOptions{Interval: time.Hour}) }()
		deadline := time.Now().Add(10 * time.Second)
		for len(as.pollTimes()) == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if len(as.pollTimes()) != 1 {
			t.Fatalf("provider saw %d polls, want 1 in flight", len(as.pollTimes()))
		}
		cancel()
		select {
		case <-done:
			close(as.hold)
			t.Fatal("RunWorker returned while a device poll was in flight")
		case <-time.After(300 * time.Millisecond):
		}
		close(as.hold)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Fatal("RunWorker did not return after the poll finished")
		}
		if n := len(as.pollTimes()); n != 1 {
			t.Fatalf("provider saw %d polls after the shutdown, want 1", n)
		}
		polledID, otherID := first, second
		if h.status(second) == storage.StatusActive {
			polledID, otherID = second, first
		}
		if st := h.status(polledID); st != storage.StatusActive {
			t.Fatalf("the polled connection is %s, want active", st)
		}
		var tok map[string]any
		if st := h.do("GET", "/connections/"+polledID+"/token", nil, &tok); st != 200 || tok["access_token"] != "device-access-token" {
			t.Fatalf("token read %d %v", st, tok)
		}
		g, err := h.store.GetDeviceGrant(context.Background(), otherID)
		if err != nil {
			t.Fatal(err)
		}
		if g.Polls != 0 || g.NextPollAt.After(h.clock.Now()) {
			t.Fatalf("the unpolled grant was not handed back: %d polls, next poll %v (now %v)", g.Polls, g.NextPollAt, h.clock.Now())
		}
		if st := h.status(otherID); st != storage.StatusPending {
			t.Fatalf("the unpolled connection is %s, want pending", st)
		}
	})
}

// TestDeviceDeletedWhilePolling: the connection is deleted while its poll
// is at the provider, which then answers with a token. Nothing comes
// back: the connection stays deleted, no token or grant row is left, and
// the grant is not polled again.
func TestDeviceDeletedWhilePolling(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL)
		as := newDeviceAS(t, 2, 600)
		as.hold = make(chan struct{})
		as.register(h)
		id, _ := h.deviceConsent("fake-device")
		h.clock.Advance(2 * time.Second)
		passed := make(chan error, 1)
		go func() { _, err := h.broker.PollDevices(context.Background()); passed <- err }()
		deadline := time.Now().Add(10 * time.Second)
		for len(as.pollTimes()) == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		st := h.do("DELETE", "/connections/"+id, nil, nil)
		close(as.hold)
		if err := <-passed; err != nil {
			t.Fatal(err)
		}
		if st != http.StatusNoContent {
			t.Fatalf("delete: %d", st)
		}
		if _, err := h.store.GetConnection(context.Background(), id); !errorsIsNotFound(err) {
			t.Fatalf("connection after the token: %v, want not found", err)
		}
		if _, err := h.store.GetToken(context.Background(), id); !errorsIsNotFound(err) {
			t.Fatalf("token after the delete: %v, want not found", err)
		}
		if _, err := h.store.GetDeviceGrant(context.Background(), id); !errorsIsNotFound(err) {
			t.Fatalf("grant after the delete: %v, want not found", err)
		}
		h.clock.Advance(10 * time.Second)
		if _, err := h.broker.PollDevices(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := len(as.pollTimes()); n != 1 {
			t.Fatalf("provider saw %d polls, want 1", n)
		}
	})
}

func errorsIsNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }

// TestDevicePollsTakeBudget: device polls count in the provider's
// token_calls_per_minute at background priority. With a budget of 5, six
// device connections due in one minute get 4 polls (one call is kept for
// agents' reads, which still get it); the other two are deferred without
// a provider call and polled in the next minute.
func TestDevicePollsTakeBudget(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL)
		var pending []string
		for range 10 {
			pending = append(pending, "authorization_pending")
		}
		as := newDeviceAS(t, 2, 600, pending...)
		provID := h.registerProvider(map[string]any{"name": "fake-device", "auth_mode": "oauth2_device_code",
			"token_url": as.srv.URL + "/token", "device_authorization_url": as.srv.URL + "/device", "token_calls_per_minute": 5,
			"client_id": "dev-client", "client_secret": "dev-client-secret-0123456789", "token_endpoint_auth_method": "client_secret_post"})
		var ids []string
		for range 6 {
			id, _ := h.deviceConsent("fake-device")
			ids = append(ids, id)
		}
		// Well inside one budget minute.
		start := h.clock.Now()
		h.clock.Advance(start.Truncate(time.Minute).Add(time.Minute + 10*time.Second).Sub(start))
		ctx := context.Background()
		if _, err := h.broker.PollDevices(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(as.pollTimes()); n != 4 {
			t.Fatalf("provider saw %d polls in the minute, want 4 (5 less the 1 kept for reads)", n)
		}
		// The call kept for reads is still there: a read takes it.
		now := h.clock.Now()
		ok, _, err := h.store.TakeProviderCall(ctx, storage.ProviderCall{ProviderID: provID, Now: now,
			WindowStart: now.Truncate(time.Minute), Limit: 5, ThrottledLimit: 1})
		if err != nil || !ok {
			t.Fatalf("a read found the budget spent: %v %v", ok, err)
		}
		for _, id := range ids {
			if st := h.status(id); st != storage.StatusPending {
				t.Fatalf("connection %s is %s, want pending", id, st)
			}
		}
		// The deferred two are due again one interval later, still in
		// the spent minute: no call.
		h.clock.Advance(2 * time.Second)
		if _, err := h.broker.PollDevices(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(as.pollTimes()); n != 4 {
			t.Fatalf("provider saw %d polls, want still 4", n)
		}
		// The next minute: four calls again, the two deferred grants
		// first (polled longest ago), so none waits two minutes.
		h.clock.Advance(time.Minute)
		if _, err := h.broker.PollDevices(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(as.pollTimes()); n != 8 {
			t.Fatalf("provider saw %d polls after two minutes, want 8", n)
		}
		for _, id := range ids {
			if g, err := h.store.GetDeviceGrant(ctx, id); err != nil || g.Polls == 0 {
				t.Fatalf("grant %s: %d polls (%v): starved by the budget", id, g.Polls, err)
			}
		}
	})
}

// TestDevicePoll429ThrottlesProvider: a device poll answered 429 throttles
// the provider as a refresh's 429 does: the poll backs off, and another
// device grant of that provider due meanwhile is not sent (deferred)
// until the throttle (at least a minute) has passed.
func TestDevicePoll429ThrottlesProvider(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL)
		as := newDeviceAS(t, 2, 600, "http:429", "authorization_pending", "authorization_pending")
		as.register(h)
		first, _ := h.deviceConsent("fake-device")
		h.clock.Advance(2 * time.Second)
		ctx := context.Background()
		if n, err := h.broker.PollDevices(ctx); err != nil || n != 1 {
			t.Fatalf("first pass polled %d: %v", n, err)
		}
		second, _ := h.deviceConsent("fake-device")
		h.clock.Advance(5 * time.Second) // both due
		if _, err := h.broker.PollDevices(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(as.pollTimes()); n != 1 {
			t.Fatalf("provider saw %d polls while throttled, want 1 (the 429)", n)
		}
		h.clock.Advance(time.Minute)
		if _, err := h.broker.PollDevices(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(as.pollTimes()); n != 3 {
			t.Fatalf("provider saw %d polls after the throttle, want 3", n)
		}
		for _, id := range []string{first, second} {
			if st := h.status(id); st != storage.StatusPending {
				t.Fatalf("connection %s is %s, want pending", id, st)
			}
		}
	})
}

// TestDevicePollLeaseNotOutlived: a pass whose provider is slow does not
// start a claimed poll after half the lease has passed (another replica
// may claim the grant when the lease ends, and the two polls would
// overlap): it hands the grant back, due at once, and the next pass
// polls it.
func TestDevicePollLeaseNotOutlived(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, func(c *broker.Config) {
			c.DevicePoll = devicepoll.Options{Lease: 2 * time.Second, Parallel: 1}
		})
		as := newDeviceAS(t, 2, 600, "authorization_pending", "authorization_pending")
		as.hold = make(chan struct{})
		as.register(h)
		first, _ := h.deviceConsent("fake-device")
		second, _ := h.deviceConsent("fake-device")
		h.clock.Advance(2 * time.Second)
		ctx := context.Background()
		passed := make(chan int, 1)
		go func() { n, _ := h.broker.PollDevices(ctx); passed <- n }()
		deadline := time.Now().Add(10 * time.Second)
		for len(as.pollTimes()) == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		h.clock.Advance(1500 * time.Millisecond) // the slow poll outlasts half the lease
		close(as.hold)
		if n := <-passed; n != 1 {
			t.Fatalf("the pass polled %d grants, want 1", n)
		}
		if n := len(as.pollTimes()); n != 1 {
			t.Fatalf("provider saw %d polls, want 1", n)
		}
		var handedBack storage.DeviceGrant
		for _, id := range []string{first, second} {
			g, err := h.store.GetDeviceGrant(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if g.Polls == 0 {
				handedBack = g
			}
		}
		if handedBack.ConnectionID == "" || handedBack.NextPollAt.After(h.clock.Now()) {
			t.Fatalf("the unpolled grant was not handed back: %+v (now %v)", handedBack, h.clock.Now())
		}
		if n, err := h.broker.PollDevices(ctx); err != nil || n != 1 || len(as.pollTimes()) != 2 {
			t.Fatalf("next pass polled %d (%v), provider saw %d, want 1 and 2", n, err, len(as.pollTimes()))
		}
	})
}

// TestDeviceBackoffEndsAtExpiry: backed off to a 32 s interval with 20 s
// of the code left, the grant is next due at the code's expiry, not after
// it: it ends then as expired_token, without another call, and not later
// as consent_expired through the pending clean-up.
func TestDeviceBackoffEndsAtExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL)
		as := newDeviceAS(t, 2, 50, "http:503", "http:503", "http:503", "http:503")
		as.register(h)
		id, _ := h.deviceConsent("fake-device")
		ctx := context.Background()
		created := h.clock.Now()
		for _, wait := range []time.Duration{2, 4, 8, 16} { // 503s: 2 → 4 → 8 → 16 → 32 s
			h.clock.Advance(wait * time.Second)
			if _, err := h.broker.PollDevices(ctx); err != nil {
				t.Fatal(err)
			}
		}
		g, err := h.store.GetDeviceGrant(ctx, id)
		if err != nil || g.Polls != 4 || g.IntervalSeconds != 32 {
			t.Fatalf("grant %+v %v, want 4 polls and a 32 s interval", g, err)
		}
		if !g.NextPollAt.Equal(g.ExpiresAt) || g.ExpiresAt.Sub(created.Add(50*time.Second)).Abs() > time.Millisecond {
			t.Fatalf("next poll %v, want the code's expiry %v", g.NextPollAt, g.ExpiresAt)
		}
		h.clock.Advance(g.ExpiresAt.Sub(h.clock.Now()))
		if _, err := h.broker.PollDevices(ctx); err != nil {
			t.Fatal(err)
		}
		c, err := h.store.GetConnection(ctx, id)
		if err != nil || c.Status != storage.StatusFailed || c.StatusReason != "expired_token" {
			t.Fatalf("connection %s (%s): %v, want failed (expired_token)", c.Status, c.StatusReason, err)
		}
		if n := len(as.pollTimes()); n != 4 {
			t.Fatalf("provider saw %d polls, want 4", n)
		}
	})
}
