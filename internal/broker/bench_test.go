package broker_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/broker"
	"github.com/dromos-dev/dromos/internal/database"
	"github.com/dromos-dev/dromos/internal/discovery"
	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/idtoken"
	"github.com/dromos-dev/dromos/internal/logging"
	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/storage/storagetest"
	"github.com/dromos-dev/dromos/internal/tokencache"
	"github.com/dromos-dev/dromos/internal/tokenset"
	"github.com/dromos-dev/dromos/internal/vault"
)

// Benchmarks of the broker's hot path, GET /connections/{id}/token, as the
// gateway calls it: API key required, client_name ownership filter,
// refresh-on-read check, token.read audit event, the production middleware
// and an info-level JSON logger. They call the handler in-process (no
// socket), so what they measure is the broker's own work per read:
//
//	go test -run '^$' -bench GetToken -benchmem ./internal/broker
//
// "stub" keeps the connection in memory, so ns/op is the broker's CPU
// alone; "sqlite" and "postgres" (DROMOS_TEST_POSTGRES_URL) read it from a
// real store, so ns/op includes the database round trip.

const (
	benchAPIKey = "bench-broker-key"
	benchClient = "bench-agent"
	benchConns  = 16
)

// stubStore serves one set of connections from memory; the token read and
// the audit queue are all it needs. Any other method panics (nil embedded
// interface), which would show a benchmark reaching past the hot path.
type stubStore struct {
	storage.Storage
	conns  map[string]storage.Connection
	tokens map[string]storage.Token
}

func (s *stubStore) CreateConnection(_ context.Context, c storage.Connection) error {
	s.conns[c.ID] = c
	return nil
}

func (s *stubStore) UpdateConnection(_ context.Context, id string, fn func(storage.Connection, *storage.Token) (storage.Connection, storage.TokenChange, error)) (storage.Connection, error) {
	c := s.conns[id]
	next, change, err := fn(c, nil)
	if err != nil {
		return storage.Connection{}, err
	}
	if change.Put != nil {
		s.tokens[id] = *change.Put
	}
	s.conns[id] = next
	return next, nil
}

func (s *stubStore) GetConnectionToken(_ context.Context, id string) (storage.Connection, *storage.Token, error) {
	c, ok := s.conns[id]
	if !ok {
		return storage.Connection{}, nil, storage.ErrNotFound
	}
	t, ok := s.tokens[id]
	if !ok {
		return c, nil, nil
	}
	return c, &t, nil
}

func (s *stubStore) AppendAudit(context.Context, ...storage.AuditEvent) error { return nil }
func (s *stubStore) Close() error                                             { return nil }

// discardWriter is a ResponseWriter that keeps only the status and the
// body size, so the benchmark adds as little as possible of its own.
type discardWriter struct {
	h      http.Header
	status int
	n      int
	body   []byte
	keep   bool
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.keep {
		w.body = append(w.body, p...)
	}
	w.n += len(p)
	return len(p), nil
}
func (w *discardWriter) reset() {
	clear(w.h)
	w.status, w.n, w.body = 0, 0, w.body[:0]
}

// newBenchBroker builds a production-like broker on store with benchConns
// active connections, each with a token valid for an hour, and returns it
// with their ids.
func newBenchBroker(b *testing.B, store storage.Storage) (*broker.Broker, []string) {
	b.Helper()
	log := logging.New(io.Discard, slog.LevelInfo) // LOG_LEVEL=info, as dromos-bench runs it
	ring, err := vault.NewKeyring(encKey)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := state.NewSigner(stateKey, nil, state.Options{Now: time.Now})
	if err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	reg := prometheus.NewRegistry()
	brk, err := broker.New(broker.Config{
		BaseURL: "http://127.0.0.1:1", RedirectPath: "/auth/callback",
		APIKeys: [][32]byte{sha(benchAPIKey)}, RequireAPIKey: true,
	}, broker.Deps{
		Store: store, Vault: ring, State: signer,
		Exchange:  exchange.New(exchange.Options{HTTPClient: hc, Timeout: 2 * time.Second, Now: time.Now, Logger: log}),
		Discovery: discovery.New(discovery.Options{HTTPClient: hc, Now: time.Now, Logger: log}),
		IDTokens:  idtoken.NewVerifier(idtoken.Options{HTTPClient: hc, Now: time.Now, Logger: log}),
		Logger:    log, Registerer: reg, Gatherer: reg, Now: time.Now, Rand: rand.Reader,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(brk.Close)

	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	ids := make([]string, benchConns)
	for i := range ids {
		id := uuid.NewString()
		ids[i] = id
		c := storage.Connection{
			ID: id, WorkspaceID: benchClient, UserID: fmt.Sprintf("user-%d", i), ClientName: benchClient,
			ProviderID: "prov-bench", ProviderName: "bench", Scopes: []string{"read", "write"},
			ReturnURL: "https://app.example/done", Metadata: map[string]json.RawMessage{"team": json.RawMessage(`"a"`)},
			Status: storage.StatusPending, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(10 * time.Minute),
		}
		if err := store.CreateConnection(ctx, c); err != nil {
			b.Fatal(err)
		}
		set := tokenset.Set{AccessToken: fmt.Sprintf("at-%040d", i), TokenType: "Bearer", RefreshToken: "rt-bench",
			Scope: "read write", Expiry: now.Add(time.Hour), ExpirySource: tokenset.ExpiryFromExpiresIn, ObtainedAt: now}
		ct, err := tokenset.Seal(ring, c, set)
		if err != nil {
			b.Fatal(err)
		}
		_, err = store.UpdateConnection(ctx, id, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
			c.Status, c.UpdatedAt, c.ExpiresAt = storage.StatusActive, now, time.Time{}
			return c, storage.TokenChange{Put: &storage.Token{ConnectionID: id, Ciphertext: ct, AADVersion: tokenset.AADVersion, ExpiresAt: set.Expiry,
				ExpirySource: set.ExpirySource, CreatedAt: now, UpdatedAt: now}}, nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return brk, ids
}

// benchTokenReads reads the connections' tokens round robin.
func benchTokenReads(b *testing.B, brk *broker.Broker, ids []string) {
	h := brk.Handler()
	reqs := make([]*http.Request, len(ids))
	for i, id := range ids {
		r, err := http.NewRequest(http.MethodGet, "http://broker/connections/"+id+"/token?client_name="+benchClient, nil)
		if err != nil {
			b.Fatal(err)
		}
		r.RemoteAddr = "127.0.0.1:40000"
		r.RequestURI = r.URL.RequestURI()
		r.Header.Set("Accept", "application/json")
		r.Header.Set("User-Agent", "dromos-gateway")
		r.Header.Set("X-API-Key", benchAPIKey)
		r.Header.Set("X-Request-Id", "0123456789abcdef01234567")
		reqs[i] = r
	}
	w := &discardWriter{h: http.Header{}, keep: true}
	// Check the answer once, outside the measurement.
	h.ServeHTTP(w, reqs[0])
	var body map[string]any
	if w.status != http.StatusOK || json.Unmarshal(w.body, &body) != nil || body["access_token"] != fmt.Sprintf("at-%040d", 0) ||
		body["provider"] != "bench" || body["token_type"] != "Bearer" || !strings.HasSuffix(string(w.body), "\n") {
		b.Fatalf("token read: %d %s", w.status, w.body)
	}
	w.keep = false
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, reqs[i%len(reqs)])
		if w.status != http.StatusOK {
			b.Fatalf("token read: status %d", w.status)
		}
		i++
	}
}

func BenchmarkGetToken(b *testing.B) {
	b.Run("store=stub", func(b *testing.B) {
		brk, ids := newBenchBroker(b, &stubStore{conns: map[string]storage.Connection{}, tokens: map[string]storage.Token{}})
		benchTokenReads(b, brk, ids)
	})
	// "+cache": the store behind the token cache, as dromos broker and
	// dromos serve run it (TOKEN_CACHE_STALENESS, on by default).
	for _, backend := range []string{"sqlite", "postgres", "sqlite+cache", "postgres+cache"} {
		b.Run("store="+backend, func(b *testing.B) {
			url := "sqlite:" + b.TempDir() + "/dromos.db"
			if strings.HasPrefix(backend, "postgres") {
				url = storagetest.PostgresURL(b)
			}
			store, err := database.Open(context.Background(), url, database.Options{Logger: logging.Discard(), Migrate: true})
			if err != nil {
				b.Fatal(err)
			}
			if strings.HasSuffix(backend, "+cache") {
				cache, err := tokencache.New(store, tokencache.Options{})
				if err != nil {
					b.Fatal(err)
				}
				cache.Run(context.Background())
				store = cache
			}
			b.Cleanup(func() { store.Close() })
			brk, ids := newBenchBroker(b, store)
			benchTokenReads(b, brk, ids)
		})
	}
}
