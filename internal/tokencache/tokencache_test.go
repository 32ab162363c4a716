package tokencache_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/storage/postgres"
	"github.com/dromos-dev/dromos/internal/storage/sqlite"
	"github.com/dromos-dev/dromos/internal/storage/storagetest"
	"github.com/dromos-dev/dromos/internal/tokencache"
)

// replicas opens two stores on one database, as two broker replicas
// would: separate connection pools, nothing shared but the database.
type replicas func(t *testing.T) (a, b storage.Storage)

func backends() map[string]replicas {
	return map[string]replicas{
		"sqlite": func(t *testing.T) (storage.Storage, storage.Storage) {
			path := filepath.Join(t.TempDir(), "dromos.db")
			open := func() storage.Storage {
				s, err := sqlite.Open(t.Context(), path, sqlite.Options{Migrate: true})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			return open(), open()
		},
		"postgres": func(t *testing.T) (storage.Storage, storage.Storage) {
			url := storagetest.PostgresURL(t)
			open := func() storage.Storage {
				s, err := postgres.Open(t.Context(), url, postgres.Options{Migrate: true})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			return open(), open()
		},
	}
}

// counting counts the token reads that reach the database, and can hold
// one after it has read its row (to let a write overtake it).
type counting struct {
	storage.Storage
	reads atomic.Int64
	hold  chan chan struct{} // when set, a read hands over a release channel and waits
}

func (c *counting) GetConnectionToken(ctx context.Context, id string) (storage.Connection, *storage.Token, error) {
	c.reads.Add(1)
	conn, tok, err := c.Storage.GetConnectionToken(ctx, id)
	if c.hold != nil {
		release := make(chan struct{})
		c.hold <- release
		<-release
	}
	return conn, tok, err
}

// clock is a manual clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const staleness = 500 * time.Millisecond

type fixture struct {
	reg   *prometheus.Registry
	cache *tokencache.Store // replica A, cached
	db    *counting         // what A's reads reach
	other storage.Storage   // replica B, writing
	clk   *clock
}

func newFixture(t *testing.T, open replicas) *fixture {
	a, b := open(t)
	db := &counting{Storage: a}
	clk := &clock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	cache, err := tokencache.New(db, tokencache.Options{Staleness: staleness, Now: clk.Now, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{reg: reg, cache: cache, db: db, other: b, clk: clk}
}

// connect creates an active connection with a sealed token tagged tag,
// through replica B.
func (f *fixture) connect(t *testing.T, id, tag string) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	c := storage.Connection{ID: id, ClientName: "agent", ProviderID: "p1", ProviderName: "demo", Status: storage.StatusActive,
		Scopes: []string{"read"}, Metadata: map[string]json.RawMessage{"team": json.RawMessage(`"blue"`)},
		CreatedAt: now, UpdatedAt: now}
	if err := f.other.CreateConnection(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	f.put(t, f.other, id, tag, 1)
}

// put stores a token row sealed as tag under aad version v (a refresh
// stores a new one, a key rotation re-seals it).
func (f *fixture) put(t *testing.T, s storage.Storage, id, tag string, v int) {
	t.Helper()
	_, err := s.UpdateConnection(t.Context(), id, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		return c, storage.TokenChange{Put: &storage.Token{ConnectionID: id, Ciphertext: []byte("sealed:" + tag), AADVersion: v,
			ExpiresAt: time.Now().Add(time.Hour).UTC().Truncate(time.Second)}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) read(t *testing.T, id string) (storage.Connection, string) {
	t.Helper()
	c, tok, err := f.cache.GetConnectionToken(t.Context(), id)
	if err != nil {
		t.Fatalf("read %s: %v", id, err)
	}
	if tok == nil {
		return c, ""
	}
	return c, string(tok.Ciphertext)
}

func TestCache(t *testing.T) {
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) {
			t.Run("HitsServeFromMemory", func(t *testing.T) {
				f := newFixture(t, open)
				f.connect(t, "c1", "one")
				for range 5 {
					if _, got := f.read(t, "c1"); got != "sealed:one" {
						t.Fatalf("read %q", got)
					}
				}
				if n := f.db.reads.Load(); n != 1 {
					t.Fatalf("%d database reads for 5 token reads, want 1", n)
				}
				for name, want := range map[string]float64{`token_cache_reads_total{result="hit"}`: 4,
					`token_cache_reads_total{result="miss"}`: 1, `token_cache_rows`: 1} {
					if got := gathered(t, f.reg)[name]; got != want {
						t.Errorf("%s = %v, want %v", name, got, want)
					}
				}
			})

			// Rows nobody reads stop costing checks: dropped after
			// twenty half-bounds without a read, while a row in use stays.
			t.Run("IdleRowsAreDropped", func(t *testing.T) {
				f := newFixture(t, open)
				f.connect(t, "hot", "hot")
				f.connect(t, "idle", "idle")
				f.read(t, "hot")
				f.read(t, "idle")
				for i := range 21 {
					if n := f.cache.Len(); n != 2 && i < 20 {
						t.Fatalf("after %d checks %d rows held, want 2", i, n)
					}
					f.clk.Add(staleness / 2)
					if err := f.cache.Check(t.Context()); err != nil {
						t.Fatal(err)
					}
					f.read(t, "hot")
				}
				if n := f.cache.Len(); n != 1 {
					t.Fatalf("%d rows held, want only the one in use", n)
				}
				if n := f.db.reads.Load(); n != 2 {
					t.Fatalf("%d database reads, want 2 (the row in use stayed cached)", n)
				}
			})

			t.Run("CheckerKeepsUnchangedRows", func(t *testing.T) {
				f := newFixture(t, open)
				f.connect(t, "c1", "one")
				f.read(t, "c1")
				// Four checks, each half the bound apart: the row is
				// confirmed every time and never read again, for twice
				// the bound.
				for range 4 {
					f.clk.Add(staleness / 2)
					if err := f.cache.Check(t.Context()); err != nil {
						t.Fatal(err)
					}
					f.read(t, "c1")
				}
				if n := f.db.reads.Load(); n != 1 {
					t.Fatalf("%d database reads, want 1: the checks did not confirm the row", n)
				}
			})

			// A change on the other replica is seen at the next check,
			// and even without one never after the bound.
			changes := []struct {
				name   string
				change func(t *testing.T, f *fixture)
				seen   func(t *testing.T, f *fixture) bool
			}{
				{"RefreshElsewhere", func(t *testing.T, f *fixture) { f.put(t, f.other, "c1", "refreshed", 1) },
					func(t *testing.T, f *fixture) bool { _, got := f.read(t, "c1"); return got == "sealed:refreshed" }},
				{"KeyRotationElsewhere", func(t *testing.T, f *fixture) { f.put(t, f.other, "c1", "resealed", 2) },
					func(t *testing.T, f *fixture) bool {
						_, tok, err := f.cache.GetConnectionToken(t.Context(), "c1")
						return err == nil && tok.AADVersion == 2 && string(tok.Ciphertext) == "sealed:resealed"
					}},
				{"RevocationElsewhere", func(t *testing.T, f *fixture) {
					_, err := f.other.UpdateConnection(t.Context(), "c1", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
						c.Status = storage.StatusRevoked
						return c, storage.TokenChange{Delete: true}, nil
					})
					if err != nil {
						t.Fatal(err)
					}
				}, func(t *testing.T, f *fixture) bool {
					c, got := f.read(t, "c1")
					return c.Status == storage.StatusRevoked && got == ""
				}},
				{"DeletionElsewhere", func(t *testing.T, f *fixture) {
					if err := f.other.DeleteConnection(t.Context(), "c1"); err != nil {
						t.Fatal(err)
					}
				}, func(t *testing.T, f *fixture) bool {
					_, _, err := f.cache.GetConnectionToken(t.Context(), "c1")
					return errors.Is(err, storage.ErrNotFound)
				}},
			}
			for _, ch := range changes {
				t.Run(ch.name, func(t *testing.T) {
					t.Run("AtTheNextCheck", func(t *testing.T) {
						f := newFixture(t, open)
						f.connect(t, "c1", "one")
						f.read(t, "c1")
						ch.change(t, f)
						if err := f.cache.Check(t.Context()); err != nil {
							t.Fatal(err)
						}
						if !ch.seen(t, f) {
							t.Fatal("the check did not drop the changed row")
						}
					})
					t.Run("WithinTheBoundWithoutChecks", func(t *testing.T) {
						f := newFixture(t, open)
						f.connect(t, "c1", "one")
						f.read(t, "c1")
						ch.change(t, f)
						// Within the bound the old row may still be served:
						// it is (no check ran), which shows the row is cached.
						f.clk.Add(staleness)
						if ch.seen(t, f) {
							t.Fatal("the change was seen within the bound without a check: the row was not cached")
						}
						f.clk.Add(time.Millisecond)
						if !ch.seen(t, f) {
							t.Fatal("an unconfirmed row was served beyond the staleness bound")
						}
					})
				})
			}

			// Only active rows are kept: a connection activated by another
			// replica's callback is served at once, however often it was
			// read while pending.
			t.Run("PendingIsNotCached", func(t *testing.T) {
				f := newFixture(t, open)
				now := time.Now().UTC().Truncate(time.Second)
				if err := f.other.CreateConnection(t.Context(), storage.Connection{ID: "c1", ClientName: "agent", ProviderID: "p1",
					ProviderName: "demo", Status: storage.StatusPending, CreatedAt: now, UpdatedAt: now}); err != nil {
					t.Fatal(err)
				}
				for range 3 {
					if c, got := f.read(t, "c1"); c.Status != storage.StatusPending || got != "" {
						t.Fatalf("pending read: %s %q", c.Status, got)
					}
				}
				f.put(t, f.other, "c1", "one", 1)
				_, err := f.other.UpdateConnection(t.Context(), "c1", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
					c.Status = storage.StatusActive
					return c, storage.TokenChange{}, nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if c, got := f.read(t, "c1"); c.Status != storage.StatusActive || got != "sealed:one" {
					t.Fatalf("right after activation elsewhere: %s %q", c.Status, got)
				}
				if n := f.cache.Len(); n != 1 {
					t.Fatalf("%d rows held, want the active one", n)
				}
			})

			t.Run("LocalDeletionIsImmediate", func(t *testing.T) {
				f := newFixture(t, open)
				f.connect(t, "c1", "one")
				f.read(t, "c1")
				if err := f.cache.DeleteConnection(t.Context(), "c1"); err != nil {
					t.Fatal(err)
				}
				if _, _, err := f.cache.GetConnectionToken(t.Context(), "c1"); !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("read after deleting on this replica: %v", err)
				}
			})

			t.Run("LocalRefreshIsImmediate", func(t *testing.T) {
				f := newFixture(t, open)
				f.connect(t, "c1", "one")
				f.read(t, "c1")
				f.put(t, f.cache, "c1", "two", 1)
				if _, got := f.read(t, "c1"); got != "sealed:two" {
					t.Fatalf("read after refreshing on this replica: %q", got)
				}
			})

			// A read that fetched its row before a write on this replica
			// finished must not store that older row afterwards.
			t.Run("ReadOvertakenByLocalWrite", func(t *testing.T) {
				f := newFixture(t, open)
				f.connect(t, "c1", "one")
				f.db.hold = make(chan chan struct{})
				done := make(chan string)
				go func() {
					_, tok, err := f.cache.GetConnectionToken(context.Background(), "c1")
					if err != nil {
						done <- err.Error()
						return
					}
					done <- string(tok.Ciphertext)
				}()
				release := <-f.db.hold // the read has its row ("one")
				f.db.hold = nil
				f.put(t, f.cache, "c1", "two", 1)
				close(release)
				if got := <-done; got != "sealed:one" {
					t.Fatalf("the held read returned %q", got)
				}
				if _, got := f.read(t, "c1"); got != "sealed:two" {
					t.Fatalf("after the overtaken read: %q, the older row was stored", got)
				}
			})

			t.Run("AnswersAreCopies", func(t *testing.T) {
				f := newFixture(t, open)
				f.connect(t, "c1", "one")
				c, tok, err := f.cache.GetConnectionToken(t.Context(), "c1")
				if err != nil {
					t.Fatal(err)
				}
				c.Metadata["team"] = json.RawMessage(`"red"`)
				c.Scopes[0] = "write"
				tok.Ciphertext[0] = 'X'
				again, got := f.read(t, "c1")
				if string(again.Metadata["team"]) != `"blue"` || again.Scopes[0] != "read" || got != "sealed:one" {
					t.Fatalf("a caller's change reached the cache: %s %v %q", again.Metadata["team"], again.Scopes, got)
				}
			})

			t.Run("Bounded", func(t *testing.T) {
				a, _ := open(t)
				cache, err := tokencache.New(a, tokencache.Options{MaxEntries: 3})
				if err != nil {
					t.Fatal(err)
				}
				f := &fixture{other: a}
				for _, id := range []string{"c1", "c2", "c3", "c4", "c5"} {
					f.connect(t, id, id)
					if _, _, err := cache.GetConnectionToken(t.Context(), id); err != nil {
						t.Fatal(err)
					}
				}
				if n := cache.Len(); n != 3 {
					t.Fatalf("%d rows held, want 3", n)
				}
			})

			// The running checker, on the real clock: a refresh on the
			// other replica is never served stale past the bound.
			t.Run("RunningChecker", func(t *testing.T) {
				a, b := open(t)
				db := &counting{Storage: a}
				cache, err := tokencache.New(db, tokencache.Options{Staleness: 200 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				cache.Run(t.Context())
				defer cache.Stop()
				f := &fixture{cache: cache, db: db, other: b}
				f.connect(t, "c1", "one")
				f.read(t, "c1")
				f.put(t, b, "c1", "two", 1)
				time.Sleep(cache.Staleness() + time.Millisecond)
				if _, got := f.read(t, "c1"); got != "sealed:two" {
					t.Fatalf("read %q past the bound", got)
				}
			})
		})
	}
}

// gathered is every sample of reg by name{labels}.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=\"" + l.GetValue() + "\"}"
			}
			switch {
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[name] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}
