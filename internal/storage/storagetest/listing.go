package storagetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

func runListing(t *testing.T, open func(t *testing.T) storage.Storage) {
	// A keyset listing paged while other connections are created: every
	// connection that existed when the walk began is listed exactly once,
	// in order, and no page repeats a row, whatever lands meanwhile.
	t.Run("StableUnderConcurrentInserts", func(t *testing.T) {
		s := open(t)
		const before, during = 40, 40
		mk := func(id string, at time.Time) storage.Connection {
			return storage.Connection{ID: id, ClientName: "agent-a", UserID: "alice", ProviderName: "google",
				Status: storage.StatusActive, CreatedAt: at, UpdatedAt: at}
		}
		for i := range before {
			createConnection(t, s, mk(fmt.Sprintf("old-%03d", i), baseTime().Add(time.Duration(i)*time.Second)))
		}
		var wg sync.WaitGroup
		errs := make(chan error, during)
		wg.Go(func() {
			for i := range during {
				// Half land before the walk's cursor, half after it; some
				// share a creation time with an existing row.
				at := baseTime().Add(time.Duration(i) * time.Second)
				if i%2 == 1 {
					at = baseTime().Add(time.Duration(before+i) * time.Second)
				}
				if err := s.CreateConnection(t.Context(), mk(fmt.Sprintf("new-%03d", i), at)); err != nil {
					errs <- err
				}
			}
		})
		seen := map[string]int{}
		var last *storage.ConnectionKey
		for range 100 {
			page, err := s.ListConnections(t.Context(), storage.ConnectionFilter{ClientName: "agent-a", UserID: "alice",
				AnyStatus: []storage.ConnectionStatus{storage.StatusActive}, After: last, Limit: 7})
			must(t, "ListConnections", err)
			if len(page) == 0 {
				break
			}
			for _, c := range page {
				k := storage.ConnectionKey{CreatedAt: c.CreatedAt, ID: c.ID}
				if last != nil && !keyAfter(k, *last) {
					t.Fatalf("%s listed out of order after %s", c.ID, last.ID)
				}
				last = &k
				seen[c.ID]++
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent insert: %v", err)
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("%s listed %d times", id, n)
			}
		}
		for i := range before {
			if id := fmt.Sprintf("old-%03d", i); seen[id] != 1 {
				t.Fatalf("%s, there before the walk, listed %d times", id, seen[id])
			}
		}
	})
}

// keyAfter reports whether a comes after b in the listing order.
func keyAfter(a, b storage.ConnectionKey) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.After(b.CreatedAt)
	}
	return a.ID > b.ID
}
