package refresh

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
)

// Defaults of Config.
const (
	DefaultMargin   = 60 * time.Second
	DefaultLeaseTTL = 30 * time.Second
	DefaultLockWait = 35 * time.Second

	minBackoff = 15 * time.Second
	maxBackoff = 10 * time.Minute
	// storeRetries: more attempts at storing a refreshed token when the
	// database is briefly unavailable (0.2 s, 0.4 s, 0.8 s, 1.6 s apart).
	storeRetries = 4
	// minClientBackoff is the first wait after the provider refused the
	// broker's client credentials.
	minClientBackoff = time.Minute
	// noRefreshTokenRecheck: a token without refresh token and without
	// known expiry is looked at again by the worker after this long.
	noRefreshTokenRecheck = 24 * time.Hour
	leasePoll             = 50 * time.Millisecond
)

// Store is the part of storage.Store the refresher uses.
type Store interface {
	GetConnection(ctx context.Context, id string) (storage.Connection, error)
	GetToken(ctx context.Context, connectionID string) (storage.Token, error)
	UpdateConnection(ctx context.Context, id string, fn func(storage.Connection, *storage.Token) (storage.Connection, storage.TokenChange, error)) (storage.Connection, error)
	DueForRefresh(ctx context.Context, f storage.DueFilter) ([]string, error)
	ReleaseClaims(ctx context.Context, ids []string) error
	TakeProviderCall(ctx context.Context, c storage.ProviderCall) (taken bool, left int, err error)
	ThrottleProvider(ctx context.Context, providerID string, until time.Time) error
}

// Vault seals and opens token sets.
type Vault interface {
	tokenset.Sealer
	tokenset.Opener
}

// Exchanger calls a provider's token and revocation endpoints.
type Exchanger interface {
	Refresh(ctx context.Context, ep exchange.Endpoint, refreshToken string, scopes []string) (*exchange.Token, error)
	RevokeGrant(ctx context.Context, revocationURL string, ep exchange.Endpoint, refreshToken, accessToken string) error
	ClientCredentials(ctx context.Context, ep exchange.Endpoint, scopes []string) (*exchange.Token, error)
}

// Grant is what a refresh needs of a connection's provider.
type Grant struct {
	// Endpoint is the token endpoint with the client credentials and the
	// profile's parsing quirks switched on.
	Endpoint exchange.Endpoint
	// Profile normalises the answer and gives the token lifetime default.
	Profile provider.Profile
	// VerifyIDToken checks an id_token from a refresh answer and returns
	// its subject and issuer; nil when the provider has no verification
	// keys, in which case such an id_token is dropped.
	VerifyIDToken func(ctx context.Context, raw string) (subject, issuer string, err error)
	// RevocationURL, when known, is where a refreshed grant that could
	// not be stored (the connection was deleted meanwhile) is revoked.
	RevocationURL string
}

// Grants resolves a provider for a refresh. An error that is not the
// grant's fault (the provider was removed, discovery is down) is treated
// as transient.
type Grants interface {
	Grant(ctx context.Context, providerID string) (Grant, error)
}

// Metrics are the refresher's collectors; the broker registers them.
type Metrics struct {
	Refreshes    *prometheus.CounterVec // by result
	Seconds      prometheus.Histogram
	LockWait     prometheus.Histogram
	ClientErrors *prometheus.CounterVec // by provider
	Queue        prometheus.Gauge
	// ProviderCalls counts refresh calls to providers by provider and kind
	// (on_read, forced, ahead, keep_alive); Deferred the ones the provider
	// budget put off; BudgetLeft is each provider's calls left in the
	// current minute for the last caller's kind.
	ProviderCalls *prometheus.CounterVec
	Deferred      *prometheus.CounterVec
	BudgetLeft    *prometheus.GaugeVec
	// AheadDBSeconds is the time refresh-ahead passes spent in the
	// database finding and planning their work (the claim, each claimed
	// connection's read, next-time writes, releasing the claims), the
	// refreshes' own lease and write excluded: the background cost that
	// must not grow with the number of connections. Nil counts nothing.
	AheadDBSeconds prometheus.Counter
}

// Config tunes the refresher; zero durations take the defaults.
type Config struct {
	Margin   time.Duration // refresh tokens with less life left than this (at most a third of their lifetime)
	LeaseTTL time.Duration // how long a refresh lease holds
	LockWait time.Duration // how long a reader waits for another's lease
	Instance string        // names this process in lease owners
}

// Deps are the refresher's collaborators.
type Deps struct {
	Store  Store
	Vault  Vault
	Exch   Exchanger
	Grants Grants
	// Idle lists the providers whose grants the worker keeps alive; nil
	// keeps none alive.
	Idle    IdleLifetimes
	Metrics Metrics
	Logger  *slog.Logger
	Now     func() time.Time
	// Tracer, when set, records a span per refresh (lease, provider call,
	// write).
	Tracer trace.Tracer
}

// Refresher refreshes tokens. It is safe for concurrent use.
type Refresher struct {
	cfg     Config
	store   Store
	vault   Vault
	xchg    Exchanger
	grants  Grants
	idle    IdleLifetimes
	m       Metrics
	log     *slog.Logger
	now     func() time.Time
	tracer  trace.Tracer
	flights flight
	// batch is the refresh-ahead pass's current batch (see nextBatch).
	batch atomic.Int64
}

// New returns a Refresher.
func New(cfg Config, d Deps) *Refresher {
	if cfg.Margin <= 0 {
		cfg.Margin = DefaultMargin
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.LockWait <= 0 {
		cfg.LockWait = DefaultLockWait
	}
	if cfg.Instance == "" {
		cfg.Instance = newLeaseOwner("broker")
	}
	return &Refresher{cfg: cfg, store: d.Store, vault: d.Vault, xchg: d.Exch, grants: d.Grants, idle: d.Idle, m: d.Metrics,
		log: d.Logger, now: d.Now, tracer: d.Tracer}
}

var (
	errLeaseHeld = errors.New("refresh lease held by another broker")
	errLostLease = errors.New("refresh lease lost before the write")
	errFreshNow  = errors.New("token was refreshed meanwhile")
	errNoToken   = errors.New("connection has no token")
	errBackoff   = errors.New("refresh backing off after provider trouble")
	errChanged   = errors.New("connection changed meanwhile")
	errDeferred  = errors.New("refresh deferred: the provider's call budget is spent")
)

// flight is the in-process single-flight: concurrent readers of one
// connection share one refresh.
type flight struct {
	mu    sync.Mutex
	calls map[string]*flightCall
}

type flightCall struct {
	done chan struct{}
	set  tokenset.Set
	conn storage.Connection
	err  error
}

func (f *flight) do(key string, fn func() (storage.Connection, tokenset.Set, error)) (storage.Connection, tokenset.Set, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]*flightCall{}
	}
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		<-c.done
		return c.conn, c.set, c.err
	}
	c := &flightCall{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()
	c.conn, c.set, c.err = fn()
	f.mu.Lock()
	delete(f.calls, key)
	f.mu.Unlock()
	close(c.done)
	return c.conn, c.set, c.err
}

func newLeaseOwner(instance string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return instance + "/" + hex.EncodeToString(b[:])
}
