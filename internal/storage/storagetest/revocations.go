package storagetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

// newRevocation fills every field, so a backend that drops a column fails.
func newRevocation(id, connID string, due time.Time) storage.Revocation {
	return storage.Revocation{
		ID:             id,
		ConnectionID:   connID,
		ProviderID:     "prov-" + id,
		Sealed:         []byte{0x00, 0xc3, 0x28, 0xff, byte(len(id))},
		Attempts:       1,
		NextAttemptAt:  due,
		GiveUpAt:       due.Add(72 * time.Hour),
		LastErrorClass: "transient",
		CreatedAt:      due.Add(-time.Second),
		UpdatedAt:      due.Add(-time.Millisecond),
	}
}

func revocationIDs(rs []storage.Revocation) []string {
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	return ids
}

func wantRevocations(t *testing.T, s storage.Storage, what string, want int64) {
	t.Helper()
	n, err := s.CountRevocations(t.Context())
	must(t, what+": CountRevocations", err)
	if n != want {
		t.Errorf("%s: %d pending revocations, want %d", what, n, want)
	}
}

func runRevocations(t *testing.T, open func(t *testing.T) storage.Storage) {
	t0 := baseTime()
	t.Run("DeleteConnectionRevokingIsOneStep", func(t *testing.T) {
		s := open(t)
		activeConnection(t, s, "c1")
		must(t, "CreateStepUp", s.CreateStepUp(t.Context(), newStepUp("su-1", "c1", t0), time.Time{}, noRecentCheck))
		rev := newRevocation("r1", "c1", t0)
		err := s.DeleteConnectionRevoking(t.Context(), "c1", func(c storage.Connection, tok *storage.Token) (*storage.Revocation, error) {
			if c.ID != "c1" || c.Status != storage.StatusActive {
				t.Errorf("fn got connection %q in %q, want c1 active", c.ID, c.Status)
			}
			if tok == nil || string(tok.Ciphertext) != string(newToken("c1", "old").Ciphertext) {
				t.Errorf("fn got token %+v, want the stored one", tok)
			}
			return &rev, nil
		})
		must(t, "DeleteConnectionRevoking", err)
		_, err = s.GetConnection(t.Context(), "c1")
		wantErr(t, "GetConnection after delete", err, storage.ErrNotFound)
		_, err = s.GetToken(t.Context(), "c1")
		wantErr(t, "GetToken after delete", err, storage.ErrNotFound)
		_, err = s.LatestStepUp(t.Context(), "c1")
		wantErr(t, "LatestStepUp after delete", err, storage.ErrNotFound)
		wantRevocations(t, s, "after delete", 1)
		evs, err := s.ListLifecycleEvents(t.Context(), "c1")
		must(t, "ListLifecycleEvents", err)
		if len(evs) == 0 || evs[len(evs)-1].Type != storage.LifecycleDeleted {
			t.Errorf("lifecycle events after the delete: %+v, want connection.deleted last", evs)
		}
		lease := t0.Add(time.Minute)
		got, err := s.ClaimRevocations(t.Context(), t0, lease, 0)
		must(t, "ClaimRevocations", err)
		if len(got) != 1 {
			t.Fatalf("claimed %d revocations, want 1", len(got))
		}
		want := rev
		want.NextAttemptAt = lease
		checkEqual(t, "claimed revocation", got[0], want)
	})

	t.Run("DeleteConnectionRevokingClosureErrorChangesNothing", func(t *testing.T) {
		s := open(t)
		activeConnection(t, s, "c1")
		err := s.DeleteConnectionRevoking(t.Context(), "c1", func(storage.Connection, *storage.Token) (*storage.Revocation, error) {
			return nil, errBoom
		})
		wantErr(t, "DeleteConnectionRevoking with failing fn", err, errBoom)
		if c := getConnection(t, s, "c1"); c.Status != storage.StatusActive {
			t.Errorf("connection status %q after a failed closure, want active", c.Status)
		}
		getToken(t, s, "c1")
		wantRevocations(t, s, "after failed closure", 0)
	})

	t.Run("DeleteConnectionRevokingWithoutRevocation", func(t *testing.T) {
		s := open(t)
		createConnection(t, s, newConnection("c1"))
		err := s.DeleteConnectionRevoking(t.Context(), "c1", func(_ storage.Connection, tok *storage.Token) (*storage.Revocation, error) {
			if tok != nil {
				t.Errorf("fn got a token for a connection without one")
			}
			return nil, nil
		})
		must(t, "DeleteConnectionRevoking", err)
		_, err = s.GetConnection(t.Context(), "c1")
		wantErr(t, "GetConnection after delete", err, storage.ErrNotFound)
		wantRevocations(t, s, "nothing to revoke", 0)
		err = s.DeleteConnectionRevoking(t.Context(), "c1", func(storage.Connection, *storage.Token) (*storage.Revocation, error) {
			t.Errorf("fn called for a missing connection")
			return nil, nil
		})
		wantErr(t, "DeleteConnectionRevoking of a missing connection", err, storage.ErrNotFound)
	})

	t.Run("ClaimTakesDueRowsAndLeasesThem", func(t *testing.T) {
		s := open(t)
		for i, due := range []time.Duration{0, time.Second, 2 * time.Second, time.Hour} {
			must(t, "CreateRevocation", s.CreateRevocation(t.Context(), newRevocation(fmt.Sprintf("r%d", i), "", t0.Add(due))))
		}
		wantErr(t, "CreateRevocation of a taken id", s.CreateRevocation(t.Context(), newRevocation("r0", "", t0)), storage.ErrAlreadyExists)
		now, lease := t0.Add(2*time.Second), t0.Add(time.Minute)
		got, err := s.ClaimRevocations(t.Context(), now, lease, 2)
		must(t, "ClaimRevocations limit 2", err)
		if ids := revocationIDs(got); !slices.Equal(ids, []string{"r0", "r1"}) {
			t.Errorf("claimed %v, want the two soonest due [r0 r1]", ids)
		}
		got, err = s.ClaimRevocations(t.Context(), now, lease, 0)
		must(t, "ClaimRevocations again", err)
		if ids := revocationIDs(got); !slices.Equal(ids, []string{"r2"}) {
			t.Errorf("second claim got %v, want [r2] (r0, r1 leased, r3 not due)", ids)
		}
		got, err = s.ClaimRevocations(t.Context(), lease, lease.Add(time.Minute), 0)
		must(t, "ClaimRevocations after the lease", err)
		if ids := revocationIDs(got); !slices.Equal(ids, []string{"r0", "r1", "r2"}) {
			t.Errorf("claim after the lease ran out got %v, want [r0 r1 r2]", ids)
		}
		wantRevocations(t, s, "after claims", 4)
	})

	t.Run("UpdateAndDelete", func(t *testing.T) {
		s := open(t)
		orig := newRevocation("r1", "c1", t0)
		must(t, "CreateRevocation", s.CreateRevocation(t.Context(), orig))
		got, err := s.UpdateRevocation(t.Context(), "r1", func(r storage.Revocation) (storage.Revocation, error) {
			checkEqual(t, "revocation seen by fn", r, orig)
			r.Attempts, r.LastErrorClass = 7, "invalid_client"
			r.NextAttemptAt, r.GiveUpAt, r.UpdatedAt = t0.Add(time.Hour), t0.Add(2*time.Hour), t0.Add(time.Second)
			r.ConnectionID, r.ProviderID, r.Sealed, r.CreatedAt = "other", "other", []byte("x"), t0.Add(time.Hour)
			return r, nil
		})
		must(t, "UpdateRevocation", err)
		want := orig
		want.Attempts, want.LastErrorClass = 7, "invalid_client"
		want.NextAttemptAt, want.GiveUpAt, want.UpdatedAt = t0.Add(time.Hour), t0.Add(2*time.Hour), t0.Add(time.Second)
		checkEqual(t, "updated revocation (immutable fields kept)", got, want)
		_, err = s.UpdateRevocation(t.Context(), "r1", func(r storage.Revocation) (storage.Revocation, error) {
			r.Attempts = 99
			return r, errBoom
		})
		wantErr(t, "UpdateRevocation with failing fn", err, errBoom)
		got, err = s.UpdateRevocation(t.Context(), "r1", func(r storage.Revocation) (storage.Revocation, error) { return r, nil })
		must(t, "UpdateRevocation no-op", err)
		if got.Attempts != 7 {
			t.Errorf("attempts %d after a failed closure, want 7", got.Attempts)
		}
		_, err = s.UpdateRevocation(t.Context(), "missing", func(r storage.Revocation) (storage.Revocation, error) { return r, nil })
		wantErr(t, "UpdateRevocation of a missing id", err, storage.ErrNotFound)
		must(t, "DeleteRevocation", s.DeleteRevocation(t.Context(), "r1"))
		wantErr(t, "DeleteRevocation again", s.DeleteRevocation(t.Context(), "r1"), storage.ErrNotFound)
		wantRevocations(t, s, "after delete", 0)
	})

	t.Run("ConcurrentClaimsAreDisjoint", func(t *testing.T) {
		s := open(t)
		const rows, claimers = 30, 6
		for i := range rows {
			must(t, "CreateRevocation", s.CreateRevocation(t.Context(), newRevocation(fmt.Sprintf("r%02d", i), "", t0)))
		}
		var (
			mu   sync.Mutex
			seen = map[string]int{}
			wg   sync.WaitGroup
		)
		for range claimers {
			wg.Go(func() {
				for {
					got, err := s.ClaimRevocations(t.Context(), t0, t0.Add(time.Minute), 4)
					if err != nil {
						t.Errorf("ClaimRevocations: %v", err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, r := range got {
						seen[r.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != rows {
			t.Errorf("%d distinct rows claimed, want %d", len(seen), rows)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("%s claimed %d times under one lease, want once", id, n)
			}
		}
	})
}
