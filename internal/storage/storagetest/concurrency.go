package storagetest

import (
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/dromos-dev/dromos/internal/storage"
)

var errNotPending = errors.New("storagetest: connection is not pending")

func runConcurrency(t *testing.T, open func(t *testing.T) storage.Storage) {
	t.Run("OnlyOneLeavesPending", func(t *testing.T) {
		s := open(t)
		createConnection(t, s, newConnection("c1"))
		const workers = 10
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() {
				_, errs[i] = s.UpdateConnection(t.Context(), "c1", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
					if c.Status != storage.StatusPending {
						return c, storage.TokenChange{}, errNotPending
					}
					c.Status = storage.StatusExchanging
					c.Subject = "winner-" + strconv.Itoa(i)
					return c, storage.TokenChange{}, nil
				})
			})
		}
		wg.Wait()
		winners := 0
		for i, err := range errs {
			switch {
			case err == nil:
				winners++
			case !errors.Is(err, errNotPending):
				t.Errorf("worker %d: %v, want nil or errNotPending", i, err)
			}
		}
		if winners != 1 {
			t.Fatalf("%d workers moved the connection out of pending, want exactly 1", winners)
		}
		c := getConnection(t, s, "c1")
		if c.Status != storage.StatusExchanging || c.Version != 2 {
			t.Fatalf("final status %q version %d, want exchanging 2", c.Status, c.Version)
		}
	})

	t.Run("ProviderNameRace", func(t *testing.T) {
		s := open(t)
		const workers = 10
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() {
				// Distinct ids and names, one shared alias.
				p := newProvider("p"+strconv.Itoa(i), "name-"+strconv.Itoa(i), "shared")
				errs[i] = s.CreateProvider(t.Context(), p)
			})
		}
		wg.Wait()
		winners := 0
		for i, err := range errs {
			switch {
			case err == nil:
				winners++
			case !errors.Is(err, storage.ErrAlreadyExists):
				t.Errorf("worker %d: %v, want nil or ErrAlreadyExists", i, err)
			}
		}
		ps, err := s.ListProviders(t.Context())
		must(t, "ListProviders", err)
		if winners != 1 || len(ps) != 1 {
			t.Fatalf("%d creates succeeded and %d providers stored, want exactly 1", winners, len(ps))
		}
	})

	t.Run("NoLostUpdates", func(t *testing.T) {
		s := open(t)
		c := newConnection("c1")
		c.Metadata = map[string]json.RawMessage{"counter": json.RawMessage(`0`)}
		createConnection(t, s, c)
		const workers = 40
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() {
				_, errs[i] = s.UpdateConnection(t.Context(), "c1", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
					n, err := strconv.Atoi(string(c.Metadata["counter"]))
					if err != nil {
						return c, storage.TokenChange{}, err
					}
					c.Metadata["counter"] = json.RawMessage(strconv.Itoa(n + 1))
					return c, storage.TokenChange{}, nil
				})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("worker %d: %v", i, err)
			}
		}
		got := getConnection(t, s, "c1")
		if string(got.Metadata["counter"]) != "40" || got.Version != 41 {
			t.Fatalf("counter %q version %d, want 40 and 41", got.Metadata["counter"], got.Version)
		}
	})
}
