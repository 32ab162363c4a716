package storagetest

import (
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/confirm"
	"github.com/dromos-dev/dromos/internal/storage"
)

// awaitingSince stores a connection whose confirmation began at begin
// (and so lapses at begin+confirm.TTL), with a token.
func awaitingSince(t *testing.T, s storage.Storage, id string, begin time.Time) {
	t.Helper()
	c := newConnection(id)
	c.Status = storage.StatusExchanging
	createConnection(t, s, c)
	_, digest, err := confirm.New(rand.Reader, id)
	must(t, "confirm.New", err)
	tok := newToken(id, "sealed-"+id)
	_, err = s.UpdateConnection(t.Context(), id, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		return confirm.Begin(c, digest, begin), storage.TokenChange{Put: &tok}, nil
	})
	must(t, "begin confirmation", err)
}

func resultIDs(res []confirm.Result) []string {
	ids := make([]string, len(res))
	for i, r := range res {
		ids[i] = r.Conn.ID
	}
	return ids
}

func runSweep(t *testing.T, open func(t *testing.T) storage.Storage) {
	t0 := baseTime()
	lapse := t0.Add(confirm.TTL)

	// Only confirmations whose five minutes ran out are failed, soonest
	// lapsed first, as a late value fails them: status, reason, token
	// erased and handed back for revocation, connection.failed recorded.
	t.Run("FailsOnlyLapsed", func(t *testing.T) {
		s := open(t)
		awaitingSince(t, s, "late-b", t0)
		awaitingSince(t, s, "late-a", t0)
		awaitingSince(t, s, "earliest", t0.Add(-time.Minute))
		awaitingSince(t, s, "fresh", t0.Add(time.Second))
		// Past the user step: the browser step lapses just the same.
		_, v := awaitingConfirmation(t, s, "user-matched")
		if res, _ := userStep(t, s, "user-matched", v, "mallory", time.Minute); res.Outcome != confirm.Advanced {
			t.Fatalf("user step: %s", res.Outcome)
		}
		for _, st := range []storage.ConnectionStatus{storage.StatusPending, storage.StatusActive, storage.StatusFailed, storage.StatusExchanging} {
			c := newConnection("other-" + string(st))
			c.Status = st
			c.ConfirmationExpiresAt = t0 // stale material on a connection not awaiting: never swept
			createConnection(t, s, c)
		}
		freshBefore := getConnection(t, s, "fresh")

		if res, err := confirm.Sweep(t.Context(), s, lapse.Add(-time.Microsecond), 0); err != nil || len(res) != 1 || res[0].Conn.ID != "earliest" {
			t.Fatalf("a microsecond before five minutes: %v (%v), want only the one begun a minute earlier", resultIDs(res), err)
		}
		res, err := confirm.Sweep(t.Context(), s, lapse, 0)
		must(t, "Sweep", err)
		if got, want := resultIDs(res), []string{"late-a", "late-b", "user-matched"}; !slices.Equal(got, want) {
			t.Fatalf("swept %v, want %v (soonest lapsed first, then by id)", got, want)
		}
		for _, r := range res {
			if r.Outcome != confirm.Failed || r.Conn.Status != storage.StatusFailed || r.Conn.StatusReason != confirm.Expired {
				t.Errorf("%s: %s %s/%s, want failed/%s", r.Conn.ID, r.Outcome, r.Conn.Status, r.Conn.StatusReason, confirm.Expired)
			}
			wantFailed(t, s, r, r.Conn.ID, confirm.Expired)
			if string(r.Erased.Ciphertext[4:]) != "sealed-"+r.Conn.ID && r.Conn.ID != "user-matched" {
				t.Errorf("%s: erased token is another connection's", r.Conn.ID)
			}
			if ev := eventTypes(t, s, r.Conn.ID); !slices.Contains(ev, storage.LifecycleFailed) {
				t.Errorf("%s: lifecycle events %v, want connection.failed", r.Conn.ID, ev)
			}
		}
		if c := getConnection(t, s, "fresh"); c.Version != freshBefore.Version || c.Status != storage.StatusAwaitingConfirmation {
			t.Fatalf("fresh confirmation touched: version %d→%d, %s", freshBefore.Version, c.Version, c.Status)
		}
		getToken(t, s, "fresh")
		for _, st := range []storage.ConnectionStatus{storage.StatusPending, storage.StatusActive, storage.StatusFailed, storage.StatusExchanging} {
			if c := getConnection(t, s, "other-"+string(st)); c.Status != st || c.Version != 1 {
				t.Errorf("%s connection touched: %s version %d", st, c.Status, c.Version)
			}
		}
		if again, err := confirm.Sweep(t.Context(), s, lapse.Add(time.Second), 0); err != nil || len(again) != 1 || again[0].Conn.ID != "fresh" {
			t.Fatalf("second sweep: %v (%v), want only the fresh one, lapsed by now", resultIDs(again), err)
		}
	})

	t.Run("Limit", func(t *testing.T) {
		s := open(t)
		for i, id := range []string{"c3", "c1", "c2"} {
			awaitingSince(t, s, id, t0.Add(time.Duration(i)*time.Second))
		}
		res, err := confirm.Sweep(t.Context(), s, lapse.Add(time.Minute), 2)
		must(t, "Sweep", err)
		if got := resultIDs(res); !slices.Equal(got, []string{"c3", "c1"}) {
			t.Fatalf("limit 2 swept %v, want [c3 c1]", got)
		}
		if c := getConnection(t, s, "c2"); c.Status != storage.StatusAwaitingConfirmation {
			t.Fatalf("c2 beyond the limit: %s", c.Status)
		}
	})

	// A closure error stops the pass and comes back unchanged; what it
	// was called on is not written.
	t.Run("ClosureErrorStopsThePass", func(t *testing.T) {
		s := open(t)
		awaitingSince(t, s, "c1", t0)
		awaitingSince(t, s, "c2", t0.Add(time.Second))
		calls := 0
		out, err := s.UpdateLapsedConfirmations(t.Context(), lapse.Add(time.Minute), 0,
			func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
				calls++
				if c.ID == "c2" {
					return c, storage.TokenChange{}, errBoom
				}
				next, _ := confirm.Lapse(c, lapse.Add(time.Minute))
				return next, storage.TokenChange{Delete: true}, nil
			})
		if !errors.Is(err, errBoom) || calls != 2 || len(out) != 1 || out[0].ID != "c1" {
			t.Fatalf("got %d written, %d calls, %v; want c1 written, 2 calls, errBoom", len(out), calls, err)
		}
		if c := getConnection(t, s, "c2"); c.Status != storage.StatusAwaitingConfirmation || c.Version != 2 {
			t.Fatalf("c2 after the closure failed: %s version %d", c.Status, c.Version)
		}
		getToken(t, s, "c2")
	})

	// Replicas sweeping at once fail each lapsed confirmation exactly
	// once: the closure never runs twice on one connection.
	t.Run("ConcurrentSweepsFailEachOnce", func(t *testing.T) {
		s := open(t)
		const conns, sweepers = 24, 4
		for i := range conns {
			awaitingSince(t, s, "c"+string(rune('a'+i)), t0.Add(time.Duration(i)*time.Millisecond))
		}
		var (
			mu    sync.Mutex
			calls = map[string]int{}
			wg    sync.WaitGroup
			errs  = make([]error, sweepers)
		)
		now := lapse.Add(time.Minute)
		for i := range sweepers {
			wg.Go(func() {
				for {
					out, err := s.UpdateLapsedConfirmations(t.Context(), now, 5,
						func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
							mu.Lock()
							calls[c.ID]++
							mu.Unlock()
							next, _ := confirm.Lapse(c, now)
							return next, storage.TokenChange{Delete: true}, nil
						})
					if err != nil || len(out) == 0 {
						errs[i] = err
						return
					}
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			must(t, "UpdateLapsedConfirmations", err)
		}
		if len(calls) != conns {
			t.Fatalf("%d connections swept, want %d", len(calls), conns)
		}
		for id, n := range calls {
			if n != 1 {
				t.Errorf("%s swept %d times", id, n)
			}
			if c := getConnection(t, s, id); c.Status != storage.StatusFailed {
				t.Errorf("%s: %s", id, c.Status)
			}
		}
	})

	// A confirmation completing while a sweep runs keeps its outcome: the
	// sweep, finding the row changed (or held), leaves it.
	t.Run("ConfirmationInFlightIsLeftAlone", func(t *testing.T) {
		s := open(t)
		awaitingSince(t, s, "c1", t0)
		entered, release := make(chan struct{}), make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := s.UpdateConnection(t.Context(), "c1", func(c storage.Connection, tok *storage.Token) (storage.Connection, storage.TokenChange, error) {
				close(entered)
				<-release
				// A browser step that passed just in time.
				c.Status, c.StatusReason, c.ConfirmationHash, c.ConfirmationExpiresAt = storage.StatusActive, "", "", time.Time{}
				return c, storage.TokenChange{}, nil
			})
			done <- err
		}()
		<-entered
		swept := make(chan []confirm.Result, 1)
		go func() {
			res, err := confirm.Sweep(t.Context(), s, lapse.Add(time.Minute), 0)
			if err != nil {
				t.Error(err)
			}
			swept <- res
		}()
		var res []confirm.Result
		select {
		case res = <-swept:
			// PostgreSQL skipped the locked row without waiting.
			close(release)
		case <-time.After(200 * time.Millisecond):
			// SQLite's single writer: the sweep waits its turn.
			close(release)
			res = <-swept
		}
		must(t, "UpdateConnection", <-done)
		if len(res) != 0 {
			t.Fatalf("swept %v while its confirmation completed", resultIDs(res))
		}
		if c := getConnection(t, s, "c1"); c.Status != storage.StatusActive {
			t.Fatalf("c1 is %s, want active", c.Status)
		}
		getToken(t, s, "c1")
	})
}
