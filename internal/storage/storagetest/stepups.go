package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

// newStepUp fills every field, so a backend that drops a column fails.
func newStepUp(id, connID string, created time.Time) storage.StepUp {
	return storage.StepUp{
		ID:           id,
		ConnectionID: connID,
		Scopes:       []string{"openid", "email", "files.write"},
		Added:        []string{"files.write"},
		ReturnURL:    "https://app.example.com/more?y=2",
		Status:       storage.StepUpPending,
		StatusReason: "",
		Nonce:        "nonce-" + id,
		PKCEVerifier: []byte{0x00, 0xc3, 0x28, 0xff},
		CreatedAt:    created,
		UpdatedAt:    created.Add(time.Millisecond),
		ExpiresAt:    created.Add(10 * time.Minute),
	}
}

// activeConnection is a connection with a token, as a step-up finds it.
func activeConnection(t *testing.T, s storage.Storage, id string) storage.Connection {
	t.Helper()
	c := newConnection(id)
	c.Status, c.Nonce, c.PKCEVerifier = storage.StatusActive, "", nil
	createConnection(t, s, c)
	tok := newToken(id, "old")
	out, err := s.UpdateConnection(t.Context(), id, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		return c, storage.TokenChange{Put: &tok}, nil
	})
	must(t, "put token", err)
	return out
}

func noRecentCheck(storage.Connection, []storage.StepUp) error { return nil }

func runStepUps(t *testing.T, open func(t *testing.T) storage.Storage) {
	t.Run("CreateAndLatestRoundTrip", func(t *testing.T) {
		s := open(t)
		activeConnection(t, s, "c1")
		t0 := baseTime()
		first, second := newStepUp("su-1", "c1", t0), newStepUp("su-2", "c1", t0.Add(time.Second))
		second.Scopes, second.Added, second.Nonce = nil, nil, ""
		must(t, "CreateStepUp 1", s.CreateStepUp(t.Context(), first, time.Time{}, noRecentCheck))
		got, err := s.LatestStepUp(t.Context(), "c1")
		must(t, "LatestStepUp", err)
		checkEqual(t, "latest step-up", got, first)
		must(t, "CreateStepUp 2", s.CreateStepUp(t.Context(), second, time.Time{}, noRecentCheck))
		got, err = s.LatestStepUp(t.Context(), "c1")
		must(t, "LatestStepUp", err)
		checkEqual(t, "latest step-up after a second one", got, second)
		// Newest means expiring last, not created last.
		third := newStepUp("su-3", "c1", t0.Add(2*time.Second))
		third.ExpiresAt = second.ExpiresAt.Add(-time.Minute)
		must(t, "CreateStepUp 3", s.CreateStepUp(t.Context(), third, time.Time{}, noRecentCheck))
		got, err = s.LatestStepUp(t.Context(), "c1")
		must(t, "LatestStepUp", err)
		checkEqual(t, "latest step-up after one expiring earlier", got, second)
		if _, err := s.LatestStepUp(t.Context(), "other"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("LatestStepUp of a connection without step-ups: %v, want ErrNotFound", err)
		}
		if err := s.CreateStepUp(t.Context(), first, time.Time{}, noRecentCheck); !errors.Is(err, storage.ErrAlreadyExists) {
			t.Fatalf("CreateStepUp with a taken id: %v, want ErrAlreadyExists", err)
		}
	})

	t.Run("CreateSeesRecentAndConnection", func(t *testing.T) {
		s := open(t)
		conn := activeConnection(t, s, "c1")
		activeConnection(t, s, "c2")
		t0 := baseTime()
		for i, id := range []string{"old", "mid", "new"} {
			must(t, "CreateStepUp "+id, s.CreateStepUp(t.Context(), newStepUp(id, "c1", t0.Add(time.Duration(i)*time.Minute)), time.Time{}, noRecentCheck))
		}
		must(t, "CreateStepUp other", s.CreateStepUp(t.Context(), newStepUp("elsewhere", "c2", t0.Add(time.Hour)), time.Time{}, noRecentCheck))
		var seen []string
		var seenConn storage.Connection
		err := s.CreateStepUp(t.Context(), newStepUp("next", "c1", t0.Add(3*time.Minute)), t0.Add(time.Minute),
			func(c storage.Connection, recent []storage.StepUp) error {
				seenConn = c
				for _, r := range recent {
					seen = append(seen, r.ID)
				}
				return nil
			})
		must(t, "CreateStepUp next", err)
		checkEqual(t, "connection given to fn", seenConn, conn)
		if fmt.Sprint(seen) != "[new mid]" {
			t.Fatalf("fn saw %v, want [new mid] (since is inclusive, newest first, this connection only)", seen)
		}
	})

	t.Run("CreateRefusedWritesNothing", func(t *testing.T) {
		s := open(t)
		activeConnection(t, s, "c1")
		err := s.CreateStepUp(t.Context(), newStepUp("su-1", "c1", baseTime()), time.Time{},
			func(storage.Connection, []storage.StepUp) error { return errBoom })
		if !errors.Is(err, errBoom) {
			t.Fatalf("CreateStepUp: %v, want the closure's error", err)
		}
		if _, err := s.LatestStepUp(t.Context(), "c1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("LatestStepUp after a refused create: %v, want ErrNotFound", err)
		}
		err = s.CreateStepUp(t.Context(), newStepUp("su-2", "missing", baseTime()), time.Time{}, noRecentCheck)
		if !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("CreateStepUp for a missing connection: %v, want ErrNotFound", err)
		}
	})

	t.Run("UpdateStepUp", func(t *testing.T) {
		s := open(t)
		activeConnection(t, s, "c1")
		su := newStepUp("su-1", "c1", baseTime())
		must(t, "CreateStepUp", s.CreateStepUp(t.Context(), su, time.Time{}, noRecentCheck))
		if _, err := s.UpdateStepUp(t.Context(), "su-1", func(storage.StepUp) (storage.StepUp, error) { return storage.StepUp{}, errBoom }); !errors.Is(err, errBoom) {
			t.Fatalf("UpdateStepUp: %v, want the closure's error", err)
		}
		got, err := s.UpdateStepUp(t.Context(), "su-1", func(cur storage.StepUp) (storage.StepUp, error) {
			checkEqual(t, "step-up given to fn", cur, su)
			cur.Status, cur.StatusReason, cur.PKCEVerifier = storage.StepUpFailed, "access_denied", nil
			cur.UpdatedAt = baseTime().Add(time.Minute)
			// Identity fields are kept whatever fn returns.
			cur.ID, cur.ConnectionID, cur.CreatedAt = "x", "y", time.Time{}
			return cur, nil
		})
		must(t, "UpdateStepUp", err)
		want := su
		want.Status, want.StatusReason, want.PKCEVerifier, want.UpdatedAt = storage.StepUpFailed, "access_denied", nil, baseTime().Add(time.Minute)
		checkEqual(t, "updated step-up", got, want)
		latest, err := s.LatestStepUp(t.Context(), "c1")
		must(t, "LatestStepUp", err)
		checkEqual(t, "stored step-up", latest, want)
		if _, err := s.UpdateStepUp(t.Context(), "missing", func(s storage.StepUp) (storage.StepUp, error) { return s, nil }); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("UpdateStepUp of a missing step-up: %v, want ErrNotFound", err)
		}
	})

	t.Run("FinishIsAtomic", func(t *testing.T) {
		s := open(t)
		before := activeConnection(t, s, "c1")
		su := newStepUp("su-1", "c1", baseTime())
		must(t, "CreateStepUp", s.CreateStepUp(t.Context(), su, time.Time{}, noRecentCheck))
		newTok := newToken("c1", "new")
		newTok.ExpiresAt = baseTime().Add(2 * time.Hour)

		// A failing closure changes nothing anywhere.
		_, _, err := s.FinishStepUp(t.Context(), "su-1", func(cur storage.StepUp, c storage.Connection, tok *storage.Token) (storage.StepUp, storage.Connection, storage.TokenChange, error) {
			return cur, c, storage.TokenChange{Put: &newTok}, errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("FinishStepUp: %v, want the closure's error", err)
		}
		checkEqual(t, "connection after a refused finish", getConnection(t, s, "c1"), before)
		checkEqual(t, "token after a refused finish", getToken(t, s, "c1"), newToken("c1", "old"))

		gotStep, gotConn, err := s.FinishStepUp(t.Context(), "su-1", func(cur storage.StepUp, c storage.Connection, tok *storage.Token) (storage.StepUp, storage.Connection, storage.TokenChange, error) {
			checkEqual(t, "step-up given to fn", cur, su)
			checkEqual(t, "connection given to fn", c, before)
			if tok == nil || string(tok.Ciphertext) != string(newToken("c1", "old").Ciphertext) {
				t.Errorf("fn got token %v, want the current one", tok)
			}
			cur.Status, cur.PKCEVerifier = storage.StepUpCompleted, nil
			c.Scopes = cur.Scopes
			return cur, c, storage.TokenChange{Put: &newTok}, nil
		})
		must(t, "FinishStepUp", err)
		if gotStep.Status != storage.StepUpCompleted || gotStep.PKCEVerifier != nil {
			t.Fatalf("finished step-up %+v, want completed without verifier", gotStep)
		}
		wantConn := before
		wantConn.Scopes, wantConn.Version = su.Scopes, before.Version+1
		checkEqual(t, "finished connection", gotConn, wantConn)
		checkEqual(t, "stored connection", getConnection(t, s, "c1"), wantConn)
		checkEqual(t, "stored token", getToken(t, s, "c1"), newTok)
		latest, err := s.LatestStepUp(t.Context(), "c1")
		must(t, "LatestStepUp", err)
		checkEqual(t, "stored step-up", latest, gotStep)
	})

	t.Run("DeletingTheConnectionDeletesItsStepUps", func(t *testing.T) {
		s := open(t)
		activeConnection(t, s, "c1")
		must(t, "CreateStepUp", s.CreateStepUp(t.Context(), newStepUp("su-1", "c1", baseTime()), time.Time{}, noRecentCheck))
		must(t, "DeleteConnection", s.DeleteConnection(t.Context(), "c1"))
		if _, err := s.LatestStepUp(t.Context(), "c1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("LatestStepUp after deleting the connection: %v, want ErrNotFound", err)
		}
		if _, err := s.UpdateStepUp(t.Context(), "su-1", func(s storage.StepUp) (storage.StepUp, error) { return s, nil }); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("UpdateStepUp after deleting the connection: %v, want ErrNotFound", err)
		}
	})

	t.Run("FinishRacesDelete", func(t *testing.T) {
		// Finishing a step-up while its connection is deleted ends with
		// one of the two having happened, never a deadlock or a step-up
		// left without its connection.
		s := open(t)
		for i := range 10 {
			id := fmt.Sprintf("c%d", i)
			activeConnection(t, s, id)
			suID := "su-" + id
			must(t, "CreateStepUp", s.CreateStepUp(t.Context(), newStepUp(suID, id, baseTime()), time.Time{}, noRecentCheck))
			var finishErr, deleteErr error
			var wg sync.WaitGroup
			wg.Go(func() {
				_, _, finishErr = s.FinishStepUp(t.Context(), suID, func(su storage.StepUp, c storage.Connection, _ *storage.Token) (storage.StepUp, storage.Connection, storage.TokenChange, error) {
					tok := newToken(id, "new")
					su.Status, c.Scopes = storage.StepUpCompleted, su.Scopes
					return su, c, storage.TokenChange{Put: &tok}, nil
				})
			})
			wg.Go(func() { deleteErr = s.DeleteConnection(t.Context(), id) })
			wg.Wait()
			if finishErr != nil && !errors.Is(finishErr, storage.ErrNotFound) {
				t.Fatalf("round %d: FinishStepUp: %v, want nil or ErrNotFound", i, finishErr)
			}
			must(t, "DeleteConnection", deleteErr)
			if _, err := s.LatestStepUp(t.Context(), id); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("round %d: step-up outlived its connection: %v", i, err)
			}
		}
	})

	t.Run("ConcurrentCreatesRespectALimit", func(t *testing.T) {
		// A limit checked in fn holds under concurrency: the backend
		// serialises creates of one connection.
		s := open(t)
		activeConnection(t, s, "c1")
		const workers, limit = 8, 3
		errLimited := errors.New("limited")
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() {
				su := newStepUp(fmt.Sprintf("su-%d", i), "c1", baseTime().Add(time.Duration(i)*time.Millisecond))
				errs[i] = s.CreateStepUp(t.Context(), su, baseTime().Add(-time.Hour), func(_ storage.Connection, recent []storage.StepUp) error {
					if len(recent) >= limit {
						return errLimited
					}
					return nil
				})
			})
		}
		wg.Wait()
		created := 0
		for i, err := range errs {
			switch {
			case err == nil:
				created++
			case errors.Is(err, storage.ErrUnavailable):
				// A busy database may refuse; it must not over-admit.
			case !errors.Is(err, errLimited):
				t.Errorf("worker %d: %v, want nil or the limit", i, err)
			}
		}
		if created > limit {
			t.Fatalf("%d step-ups created, limit %d", created, limit)
		}
		if created == 0 {
			t.Fatal("no step-up created")
		}
	})
}
