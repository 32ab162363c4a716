package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

// pendingFor is a pending connection of client, created at created and
// waiting until created + 10 minutes.
func pendingFor(id, client string, created time.Time) storage.Connection {
	c := newConnection(id)
	c.ClientName, c.Status, c.StatusReason = client, storage.StatusPending, ""
	c.CreatedAt, c.UpdatedAt, c.ExpiresAt = created, created, created.Add(10*time.Minute)
	return c
}

func runRetention(t *testing.T, open func(t *testing.T) storage.Storage) {
	t.Run("PendingCapPerClient", func(t *testing.T) {
		s := open(t)
		now := baseTime()
		for i := range 3 {
			must(t, "CreatePendingConnection", s.CreatePendingConnection(t.Context(), pendingFor(fmt.Sprint("a", i), "agent-a", now), 3))
		}
		// A pending connection that ran out, and a failed one, do not count.
		old := pendingFor("a-old", "agent-a", now.Add(-time.Hour))
		createConnection(t, s, old)
		failed := pendingFor("a-failed", "agent-a", now)
		failed.Status = storage.StatusFailed
		createConnection(t, s, failed)

		err := s.CreatePendingConnection(t.Context(), pendingFor("a-over", "agent-a", now), 3)
		if !errors.Is(err, storage.ErrLimitReached) {
			t.Fatalf("4th pending for agent-a: %v, want ErrLimitReached", err)
		}
		if _, err := s.GetConnection(t.Context(), "a-over"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("refused connection was written: %v", err)
		}
		// Another client has its own count.
		must(t, "other client", s.CreatePendingConnection(t.Context(), pendingFor("b0", "agent-b", now), 3))
		// Once one of agent-a's consents has run out, it may start another.
		must(t, "after expiry", s.CreatePendingConnection(t.Context(), pendingFor("a-later", "agent-a", now.Add(10*time.Minute)), 3))
		got := getConnection(t, s, "a-later")
		want := pendingFor("a-later", "agent-a", now.Add(10*time.Minute))
		checkEqual(t, "capped connection", got, want)
	})

	t.Run("PendingCapHoldsUnderConcurrency", func(t *testing.T) {
		s := open(t)
		now := baseTime()
		const workers, max = 16, 5
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() {
				errs[i] = s.CreatePendingConnection(t.Context(), pendingFor(fmt.Sprint("c", i), "agent-a", now), max)
			})
		}
		wg.Wait()
		created := 0
		for i, err := range errs {
			switch {
			case err == nil:
				created++
			case !errors.Is(err, storage.ErrLimitReached):
				t.Errorf("worker %d: %v", i, err)
			}
		}
		all, err := s.ListConnections(t.Context(), storage.ConnectionFilter{ClientName: "agent-a", Limit: 100})
		must(t, "ListConnections", err)
		if created != max || len(all) != max {
			t.Fatalf("%d created, %d stored; want exactly %d", created, len(all), max)
		}
	})

	t.Run("PurgeOnlyNeverActiveFailures", func(t *testing.T) {
		s := open(t)
		now := baseTime()
		old, recent := now.Add(-200*time.Hour), now.Add(-time.Hour)
		mk := func(id string, status storage.ConnectionStatus, updated time.Time) storage.Connection {
			c := pendingFor(id, "agent-a", updated)
			c.Status, c.UpdatedAt = status, updated
			return c
		}
		// Failed before ever being active, long ago: purged.
		createConnection(t, s, mk("denied-old", storage.StatusFailed, old))
		expiredConsent := mk("expired-consent", storage.StatusPending, old)
		createConnection(t, s, expiredConsent)
		fail := func(id string) {
			t.Helper()
			_, err := s.UpdateConnection(t.Context(), id, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
				c.Status, c.StatusReason = storage.StatusFailed, "consent_expired"
				return c, storage.TokenChange{Delete: true}, nil
			})
			must(t, "fail "+id, err)
		}
		fail("expired-consent")
		// Failed recently: kept until the retention has passed.
		createConnection(t, s, mk("denied-recent", storage.StatusFailed, recent))
		// Once active, then failed (a reconnect that went wrong): kept.
		createConnection(t, s, mk("was-active", storage.StatusPending, old))
		_, err := s.UpdateConnection(t.Context(), "was-active", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
			c.Status = storage.StatusActive
			return c, storage.TokenChange{Put: &storage.Token{Ciphertext: []byte{1}, CreatedAt: old, UpdatedAt: old}}, nil
		})
		must(t, "activate", err)
		fail("was-active")
		// Inserted active (an import), later failed: kept.
		createConnection(t, s, mk("born-active", storage.StatusActive, old))
		fail("born-active")
		// Other states, however old: kept.
		for _, st := range []storage.ConnectionStatus{storage.StatusPending, storage.StatusActive, storage.StatusExpired, storage.StatusRevoked} {
			createConnection(t, s, mk("old-"+string(st), st, old))
		}
		// UpdateConnection keeps the closure's UpdatedAt: set it back so
		// the failures above count as old.
		for _, id := range []string{"expired-consent", "was-active", "born-active"} {
			_, err := s.UpdateConnection(t.Context(), id, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
				c.UpdatedAt = old
				return c, storage.TokenChange{}, nil
			})
			must(t, "age "+id, err)
		}

		n, err := s.PurgeConnections(t.Context(), now.Add(-168*time.Hour))
		must(t, "PurgeConnections", err)
		if n != 2 {
			t.Errorf("purged %d, want 2", n)
		}
		for _, id := range []string{"denied-old", "expired-consent"} {
			if _, err := s.GetConnection(t.Context(), id); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s survived the purge: %v", id, err)
			}
		}
		for _, id := range []string{"denied-recent", "was-active", "born-active", "old-pending", "old-active", "old-expired", "old-revoked"} {
			if _, err := s.GetConnection(t.Context(), id); err != nil {
				t.Errorf("%s was purged: %v", id, err)
			}
		}
		if n, err := s.PurgeConnections(t.Context(), now.Add(-168*time.Hour)); err != nil || n != 0 {
			t.Errorf("second purge: %d, %v; want 0", n, err)
		}
	})
}
