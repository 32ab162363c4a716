package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/broker"
)

// The worker refreshes ahead only connections read within the read
// window; one nobody reads is refreshed when it is next read.
func TestRefreshAheadOnlyWhatIsRead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, p, read := setupRotating(t, dbURL)
		unread := connect(t, h, "rot")
		h.clock.Advance(40 * time.Minute)
		if st, tok := h.token(read); st != 200 || tok["access_token"] == nil {
			t.Fatalf("read: %d %v", st, tok)
		}
		h.broker.FlushReads()
		if p.refreshes.Load() != 0 {
			t.Fatalf("a fresh token was refreshed on read")
		}
		// 90 s before both tokens expire, inside a 2-minute window; only
		// the connection read 18.5 minutes ago is within the 30-minute
		// read window.
		h.clock.Advance(18*time.Minute + 30*time.Second)
		opts := broker.WorkerOptions{Window: 2 * time.Minute, ReadWindow: 30 * time.Minute, Interval: time.Nanosecond}
		n, err := h.broker.RefreshDue(context.Background(), opts)
		if err != nil || n != 1 || p.refreshes.Load() != 1 {
			t.Fatalf("pass refreshed %d (err %v), provider saw %d refreshes; want 1 and 1", n, err, p.refreshes.Load())
		}
		c, _ := h.store.GetConnection(context.Background(), read)
		u, _ := h.store.GetConnection(context.Background(), unread)
		if c.LastRefreshAt.IsZero() || !u.LastRefreshAt.IsZero() {
			t.Fatalf("refreshed ahead: read %v, unread %v; want only the read one", c.LastRefreshAt, u.LastRefreshAt)
		}
		// A second pass finds nothing more to do.
		if n, err := h.broker.RefreshDue(context.Background(), opts); err != nil || n != 0 {
			t.Fatalf("second pass refreshed %d (err %v)", n, err)
		}
		// The unread connection is refreshed on its next read.
		h.clock.Advance(2 * time.Minute)
		if st, tok := h.token(unread); st != 200 || tok["access_token"] == nil {
			t.Fatalf("read of the unread connection: %d %v", st, tok)
		}
		if got := p.refreshes.Load(); got != 2 {
			t.Fatalf("provider saw %d refreshes, want 2 (one ahead, one on read)", got)
		}
	})
}
