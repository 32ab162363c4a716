package tokencache

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/storage"
)

// Defaults of Options.
const (
	DefaultStaleness  = 500 * time.Millisecond
	DefaultMaxEntries = 10000
	// checkBatch bounds the ids of one version query.
	checkBatch = 1000
	// idleChecks: a row not read for this many half-bounds is dropped at
	// the next check instead of checked, so the checks cost what the rows
	// in use need, not what the cache once held.
	idleChecks = 20
)

// Options tune the cache; the zero value takes the defaults.
type Options struct {
	// Staleness is the longest a change committed elsewhere can go unseen:
	// a row not confirmed current within it is read again from the
	// database. The checker runs every Staleness/2.
	Staleness time.Duration
	// MaxEntries bounds the rows held (each a connection and its sealed
	// token, about 1–2 KiB); when full, an arbitrary row makes room.
	MaxEntries int
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
	// Logger gets the checker's failures (ids only, never row values).
	Logger *slog.Logger
	// Registerer gets the cache's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Store is a storage.Storage whose GetConnectionToken is served from
// memory while its rows are known current; every other method is the
// backend's, and those that change connections or tokens drop the rows
// they touch. Safe for concurrent use.
type Store struct {
	storage.Storage
	staleness time.Duration
	max       int
	now       func() time.Time
	log       *slog.Logger
	m         *metrics

	mu      sync.Mutex
	entries map[string]*entry
	// gen grows with every write through this Store; a read that began
	// before a write does not store what it read.
	gen uint64

	stop chan struct{}
	done chan struct{}
}

// entry is one cached row. Its fields never change after it is stored,
// except checked, which is guarded by Store.mu.
type entry struct {
	conn storage.Connection
	tok  *storage.Token // nil: the connection has no token row
	// checked is when the last query that found this row current started.
	checked time.Time
	// read is when the row was last served.
	read time.Time
}

// New wraps backend. Call Run to start the checker (without it every row
// expires after Staleness and is read again), and Close (or Stop) to stop it.
func New(backend storage.Storage, opts Options) (*Store, error) {
	if backend == nil {
		return nil, errors.New("tokencache: no backend")
	}
	if opts.Staleness < 0 || opts.MaxEntries < 0 {
		return nil, errors.New("tokencache: negative staleness or size")
	}
	if opts.Staleness == 0 {
		opts.Staleness = DefaultStaleness
	}
	if opts.MaxEntries == 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{Storage: backend, staleness: opts.Staleness, max: opts.MaxEntries, now: opts.Now, log: opts.Logger,
		entries: map[string]*entry{}}
	s.m = newMetrics(opts.Registerer, s.Len)
	return s, nil
}

// Staleness is the bound the cache keeps.
func (s *Store) Staleness() time.Duration { return s.staleness }

// GetConnectionToken returns the cached row when it was confirmed current
// within Staleness, else reads it from the backend (and keeps it when it
// is an active connection with a token). The answer is the caller's own
// copy.
func (s *Store) GetConnectionToken(ctx context.Context, id string) (storage.Connection, *storage.Token, error) {
	now := s.now()
	s.mu.Lock()
	e, ok := s.entries[id]
	fresh := ok && now.Sub(e.checked) <= s.staleness
	if fresh {
		e.read = now
	}
	gen := s.gen
	s.mu.Unlock()
	if fresh {
		s.m.hit.Inc()
		return copyRow(e.conn, e.tok)
	}
	s.m.miss.Inc()
	// Taken before the query: the row read is current as of a moment
	// after this.
	start := s.now()
	c, tok, err := s.Storage.GetConnectionToken(ctx, id)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			s.mu.Lock()
			delete(s.entries, id)
			s.mu.Unlock()
		}
		return c, tok, err
	}
	if c.Status != storage.StatusActive || tok == nil {
		// Only rows a read can serve are kept: a pending connection
		// activated by another replica's callback, or one being
		// confirmed, is seen active at once, not after the bound.
		return copyRow(c, tok)
	}
	e = &entry{conn: c, tok: tok, checked: start, read: start}
	s.mu.Lock()
	if s.gen == gen {
		if _, held := s.entries[id]; !held && len(s.entries) >= s.max {
			for k := range s.entries {
				delete(s.entries, k)
				break
			}
		}
		s.entries[id] = e
	}
	s.mu.Unlock()
	return copyRow(c, tok)
}

// copyRow gives the caller values it may change without touching the
// cache: the struct's slices and map are copied too.
func copyRow(c storage.Connection, tok *storage.Token) (storage.Connection, *storage.Token, error) {
	c.Scopes = slices.Clone(c.Scopes)
	c.Metadata = maps.Clone(c.Metadata)
	c.PKCEVerifier = bytes.Clone(c.PKCEVerifier)
	if tok == nil {
		return c, nil, nil
	}
	t := *tok
	t.Ciphertext = bytes.Clone(tok.Ciphertext)
	return c, &t, nil
}

// drop forgets id's row and fences off reads in flight.
func (s *Store) drop(ids ...string) {
	s.mu.Lock()
	s.gen++
	for _, id := range ids {
		delete(s.entries, id)
	}
	s.mu.Unlock()
}

// flush forgets every row and fences off reads in flight.
func (s *Store) flush() {
	s.mu.Lock()
	s.gen++
	clear(s.entries)
	s.mu.Unlock()
}

// Writes through the cache drop what they touch, after the backend is
// done (success or not: a failed write may still have committed before
// its answer was lost).

func (s *Store) UpdateConnection(ctx context.Context, id string, fn func(storage.Connection, *storage.Token) (storage.Connection, storage.TokenChange, error)) (storage.Connection, error) {
	defer s.drop(id)
	return s.Storage.UpdateConnection(ctx, id, fn)
}

func (s *Store) DeleteConnection(ctx context.Context, id string) error {
	defer s.drop(id)
	return s.Storage.DeleteConnection(ctx, id)
}

func (s *Store) DeleteConnectionRevoking(ctx context.Context, id string, fn func(storage.Connection, *storage.Token) (*storage.Revocation, error)) error {
	defer s.drop(id)
	return s.Storage.DeleteConnectionRevoking(ctx, id, fn)
}

// FinishStepUp names a step-up, not a connection: rare enough to forget
// everything.
func (s *Store) FinishStepUp(ctx context.Context, id string, fn func(storage.StepUp, storage.Connection, *storage.Token) (storage.StepUp, storage.Connection, storage.TokenChange, error)) (storage.StepUp, storage.Connection, error) {
	defer s.flush()
	return s.Storage.FinishStepUp(ctx, id, fn)
}

func (s *Store) PurgeConnections(ctx context.Context, before time.Time) (int64, error) {
	defer s.flush()
	return s.Storage.PurgeConnections(ctx, before)
}

// Run starts the checker, which confirms or drops every row each
// Staleness/2, until ctx ends or Stop.
func (s *Store) Run(ctx context.Context) {
	s.mu.Lock()
	if s.stop != nil {
		s.mu.Unlock()
		return
	}
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	stop, done := s.stop, s.done
	s.mu.Unlock()
	go func() {
		defer close(done)
		t := time.NewTicker(s.staleness / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-stop:
				return
			case <-t.C:
				err := s.Check(ctx)
				switch {
				case err == nil:
					s.m.checkOK.Inc()
				case ctx.Err() == nil:
					s.m.checkErr.Inc()
					// Rows simply expire meanwhile: reads go to the database.
					s.log.Warn("token cache: version check failed; reads go to the database until it succeeds", "error", err)
				}
			}
		}
	}()
}

// Stop stops the checker. The cache still answers: rows expire after
// Staleness and are read again.
func (s *Store) Stop() {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.stop = nil
	s.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

// Close stops the checker and closes the backend.
func (s *Store) Close() error {
	s.Stop()
	return s.Storage.Close()
}

// Check confirms every cached row against the database's versions once:
// rows whose version is unchanged are current as of the query's start,
// others are dropped, and so are rows nobody read for idleChecks
// half-bounds. Run calls it on its own; tests call it directly.
func (s *Store) Check(ctx context.Context) error {
	idleSince := s.now().Add(-idleChecks * s.staleness / 2)
	s.mu.Lock()
	held := make(map[string]*entry, len(s.entries))
	for id, e := range s.entries {
		if e.read.Before(idleSince) {
			delete(s.entries, id)
			continue
		}
		held[id] = e
	}
	s.mu.Unlock()
	ids := slices.Collect(maps.Keys(held))
	for len(ids) > 0 {
		n := min(len(ids), checkBatch)
		batch := ids[:n]
		ids = ids[n:]
		start := s.now()
		versions, err := s.Storage.ConnectionVersions(ctx, batch)
		if err != nil {
			return err
		}
		s.mu.Lock()
		for _, id := range batch {
			e := held[id]
			if s.entries[id] != e {
				continue // replaced or dropped meanwhile: not what was checked
			}
			if v, ok := versions[id]; ok && v == e.conn.Version {
				if start.After(e.checked) {
					e.checked = start
				}
				continue
			}
			delete(s.entries, id)
		}
		s.mu.Unlock()
	}
	return nil
}

// Len is how many rows are held.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}
