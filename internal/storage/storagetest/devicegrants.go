package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

// newDeviceGrant fills every field, so a backend that drops a column fails.
func newDeviceGrant(connID string, due time.Time) storage.DeviceGrant {
	return storage.DeviceGrant{
		ConnectionID:    connID,
		ProviderID:      "prov-" + connID,
		DeviceCode:      []byte{0x00, 0xc3, 0x28, 0xff, byte(len(connID))},
		IntervalSeconds: 5,
		NextPollAt:      due,
		ExpiresAt:       due.Add(15 * time.Minute),
		Polls:           2,
		LastPolledAt:    due.Add(-5 * time.Second),
		CreatedAt:       due.Add(-time.Minute),
		UpdatedAt:       due.Add(-time.Millisecond),
	}
}

func grantIDs(ds []storage.DeviceGrant) []string {
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.ConnectionID)
	}
	slices.Sort(ids)
	return ids
}

func runDeviceGrants(t *testing.T, open func(t *testing.T) storage.Storage) {
	t0 := baseTime()
	t.Run("CreateAndGetRoundTrip", func(t *testing.T) {
		s := open(t)
		c := pendingFor("d1", "agent-a", t0)
		d := newDeviceGrant("d1", t0)
		must(t, "CreateDeviceConnection", s.CreateDeviceConnection(t.Context(), c, d, 0))
		got, err := s.GetDeviceGrant(t.Context(), "d1")
		must(t, "GetDeviceGrant", err)
		checkEqual(t, "device grant", got, d)
		conn, err := s.GetConnection(t.Context(), "d1")
		must(t, "GetConnection", err)
		if conn.Status != storage.StatusPending || conn.Version != 1 {
			t.Errorf("connection %s version %d, want pending version 1", conn.Status, conn.Version)
		}
		if _, err := s.GetDeviceGrant(t.Context(), "nope"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetDeviceGrant(missing) = %v, want ErrNotFound", err)
		}
	})
	t.Run("CreateIsAllOrNothing", func(t *testing.T) {
		s := open(t)
		for i := range 2 {
			id := fmt.Sprint("p", i)
			must(t, "CreateDeviceConnection", s.CreateDeviceConnection(t.Context(), pendingFor(id, "agent-a", t0), newDeviceGrant(id, t0), 2))
		}
		// Over the cap: neither the connection nor its grant is written.
		err := s.CreateDeviceConnection(t.Context(), pendingFor("over", "agent-a", t0), newDeviceGrant("over", t0), 2)
		if !errors.Is(err, storage.ErrLimitReached) {
			t.Fatalf("over the cap: %v, want ErrLimitReached", err)
		}
		if _, err := s.GetConnection(t.Context(), "over"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("connection over the cap was stored: %v", err)
		}
		if _, err := s.GetDeviceGrant(t.Context(), "over"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("grant over the cap was stored: %v", err)
		}
		// A taken id: the grant insert fails and the connection goes too.
		createConnection(t, s, pendingFor("taken", "agent-b", t0))
		if err := s.CreateDeviceConnection(t.Context(), pendingFor("taken", "agent-b", t0), newDeviceGrant("taken", t0), 0); err == nil {
			t.Fatal("a taken connection id was accepted")
		}
		if _, err := s.GetDeviceGrant(t.Context(), "taken"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("grant of a refused connection was stored: %v", err)
		}
	})
	t.Run("ClaimLeasesDueGrants", func(t *testing.T) {
		s := open(t)
		for i, due := range []time.Time{t0.Add(-time.Second), t0, t0.Add(time.Second)} {
			id := fmt.Sprint("g", i)
			must(t, "CreateDeviceConnection", s.CreateDeviceConnection(t.Context(), pendingFor(id, "agent", t0), newDeviceGrant(id, due), 0))
		}
		lease := t0.Add(time.Minute)
		got, err := s.ClaimDeviceGrants(t.Context(), t0, lease, 0)
		must(t, "ClaimDeviceGrants", err)
		if ids := grantIDs(got); !slices.Equal(ids, []string{"g0", "g1"}) {
			t.Fatalf("claimed %v, want g0 g1 (g2 is not due)", ids)
		}
		for _, d := range got {
			checkUTC(t, d)
			if !d.NextPollAt.Truncate(time.Microsecond).Equal(lease.Truncate(time.Microsecond)) {
				t.Errorf("%s: NextPollAt %v, want the lease %v", d.ConnectionID, d.NextPollAt, lease)
			}
			if stored, _ := s.GetDeviceGrant(t.Context(), d.ConnectionID); !stored.NextPollAt.Truncate(time.Microsecond).Equal(lease.Truncate(time.Microsecond)) {
				t.Errorf("%s: stored NextPollAt %v, want the lease", d.ConnectionID, stored.NextPollAt)
			}
		}
		// A second claimer at the same moment gets what is left: g2 once due.
		got, err = s.ClaimDeviceGrants(t.Context(), t0.Add(time.Second), lease, 0)
		must(t, "second claim", err)
		if ids := grantIDs(got); !slices.Equal(ids, []string{"g2"}) {
			t.Fatalf("second claim got %v, want g2", ids)
		}
		// Once the lease runs out, the grants are due again.
		got, err = s.ClaimDeviceGrants(t.Context(), lease, lease.Add(time.Minute), 1)
		must(t, "claim after the lease", err)
		if len(got) != 1 {
			t.Fatalf("claim after the lease (limit 1) got %d grants", len(got))
		}
	})
	t.Run("UpdateKeepsIdentityAndRefusesOnError", func(t *testing.T) {
		s := open(t)
		d := newDeviceGrant("u1", t0)
		must(t, "CreateDeviceConnection", s.CreateDeviceConnection(t.Context(), pendingFor("u1", "agent", t0), d, 0))
		_, err := s.UpdateDeviceGrant(t.Context(), "u1", func(cur storage.DeviceGrant) (storage.DeviceGrant, error) {
			cur.IntervalSeconds = 99
			return cur, errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("closure error came back as %v", err)
		}
		if got, _ := s.GetDeviceGrant(t.Context(), "u1"); got.IntervalSeconds != d.IntervalSeconds {
			t.Fatalf("a failed update wrote interval %d", got.IntervalSeconds)
		}
		next := t0.Add(10 * time.Second)
		got, err := s.UpdateDeviceGrant(t.Context(), "u1", func(cur storage.DeviceGrant) (storage.DeviceGrant, error) {
			cur.ConnectionID, cur.ProviderID, cur.CreatedAt, cur.DeviceCode = "other", "other", next, nil
			cur.IntervalSeconds, cur.NextPollAt, cur.Polls, cur.LastPolledAt, cur.UpdatedAt = 10, next, 3, t0, t0
			return cur, nil
		})
		must(t, "UpdateDeviceGrant", err)
		want := d // an empty DeviceCode keeps the stored one
		want.IntervalSeconds, want.NextPollAt, want.Polls, want.LastPolledAt, want.UpdatedAt = 10, next, 3, t0, t0
		checkEqual(t, "updated grant", got, want)
		stored, err := s.GetDeviceGrant(t.Context(), "u1")
		must(t, "GetDeviceGrant", err)
		checkEqual(t, "stored grant", stored, want)
		// Key rotation writes a re-sealed device code.
		got, err = s.UpdateDeviceGrant(t.Context(), "u1", func(cur storage.DeviceGrant) (storage.DeviceGrant, error) {
			cur.DeviceCode = []byte("resealed-device-code")
			return cur, nil
		})
		must(t, "UpdateDeviceGrant (re-seal)", err)
		want.DeviceCode = []byte("resealed-device-code")
		checkEqual(t, "re-sealed grant", got, want)
		stored, err = s.GetDeviceGrant(t.Context(), "u1")
		must(t, "GetDeviceGrant", err)
		checkEqual(t, "stored re-sealed grant", stored, want)
		if _, err := s.UpdateDeviceGrant(t.Context(), "missing", func(cur storage.DeviceGrant) (storage.DeviceGrant, error) { return cur, nil }); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("update of a missing grant: %v, want ErrNotFound", err)
		}
	})
	t.Run("DeleteAndCascade", func(t *testing.T) {
		s := open(t)
		for _, id := range []string{"x1", "x2"} {
			must(t, "CreateDeviceConnection", s.CreateDeviceConnection(t.Context(), pendingFor(id, "agent", t0), newDeviceGrant(id, t0), 0))
		}
		must(t, "DeleteDeviceGrant", s.DeleteDeviceGrant(t.Context(), "x1"))
		if err := s.DeleteDeviceGrant(t.Context(), "x1"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("second delete: %v, want ErrNotFound", err)
		}
		if _, err := s.GetConnection(t.Context(), "x1"); err != nil {
			t.Errorf("deleting the grant deleted the connection: %v", err)
		}
		must(t, "DeleteConnection", s.DeleteConnection(t.Context(), "x2"))
		if _, err := s.GetDeviceGrant(t.Context(), "x2"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("grant outlived its connection: %v", err)
		}
	})
	t.Run("ConcurrentClaimsAreDisjoint", func(t *testing.T) {
		s := open(t)
		const grants, claimers = 12, 4
		for i := range grants {
			id := fmt.Sprintf("c%02d", i)
			must(t, "CreateDeviceConnection", s.CreateDeviceConnection(t.Context(), pendingFor(id, "agent", t0), newDeviceGrant(id, t0), 0))
		}
		var (
			mu   sync.Mutex
			seen = map[string]int{}
			wg   sync.WaitGroup
		)
		for range claimers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 3 {
					got, err := s.ClaimDeviceGrants(t.Context(), t0, t0.Add(time.Minute), 2)
					if err != nil {
						t.Errorf("ClaimDeviceGrants: %v", err)
						return
					}
					mu.Lock()
					for _, d := range got {
						seen[d.ConnectionID]++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(seen) != grants {
			t.Errorf("%d grants claimed, want all %d", len(seen), grants)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("%s claimed %d times under one lease", id, n)
			}
		}
	})
}
