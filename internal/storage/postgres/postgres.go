package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dromos-dev/dromos/internal/connmeta"
	"github.com/dromos-dev/dromos/internal/jsonscan"
	"github.com/dromos-dev/dromos/internal/storage"
)

// Options configures Open.
type Options struct {
	// Logger receives migration progress; nil discards.
	Logger *slog.Logger
	// Migrate applies pending migrations before Open returns. Without it,
	// Open fails with migration.ErrPending on an outdated schema.
	Migrate bool
	// QueryTracer, when set, is told about every query (internal/tracing
	// records spans with it).
	QueryTracer pgx.QueryTracer
}

// Store is a storage.Storage on a pgx connection pool. Safe for concurrent
// use.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

var _ storage.Storage = (*Store)(nil)

// Open connects to the database at url (postgres:// or postgresql://),
// checks that it answers, and migrates it or verifies its schema version.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn redacts the password from its parse errors.
		return nil, fmt.Errorf("postgres: parse database URL: %w", err)
	}
	// pgxpool's default (max(4, cores)) starves a broker under concurrent
	// token reads; pool_max_conns in the URL still wins.
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = max(int32(runtime.NumCPU())*4, defaultMaxConns)
	}
	if opts.QueryTracer != nil {
		cfg.ConnConfig.Tracer = opts.QueryTracer
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: create pool: %w", err)
	}
	s := &Store{pool: pool, log: log}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if opts.Migrate {
		err = migrateConn(ctx, cfg.ConnConfig, log)
	} else {
		err = s.checkSchema(ctx)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be released.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// defaultMaxConns is the smallest pool a broker gets by default.
const defaultMaxConns = 16

// wrap prefixes err with the operation and maps driver errors to the
// storage sentinels. Only names and ids go into op, never row values.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres: %s: %w", op, storage.ErrNotFound)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		return fmt.Errorf("postgres: %s: %w (constraint %s)", op, storage.ErrAlreadyExists, pgErr.ConstraintName)
	}
	if unavailable(err) {
		return fmt.Errorf("postgres: %s: %w: %w", op, storage.ErrUnavailable, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// unavailable reports errors that mean "the database cannot serve this
// right now; the same request may work shortly" rather than "this request
// is wrong": connection failures, and the server's connection-exception
// (08…), insufficient-resources (53…: too many connections, out of memory
// or disk), shutdown (57P01, 57P02), starting-up (57P03) and statement
// timeout (57014) answers, a read-only server after a failover (25006),
// and transaction conflicts (40001 serialization failure, 40P01 deadlock).
func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", "57014", "25006", "40001", "40P01":
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "53")
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET)
}

// inTx runs fn in a read-committed transaction, rolling back on any error.
// fn's error is returned unchanged so callers' closures keep errors.Is.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return wrap("begin", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return wrap("commit", err)
	}
	return nil
}

func nullTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

func fromNullTime(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// nilIfEmpty keeps empty byte slices out of the database so that nil and
// empty read back the same way.
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func encodeMap(m map[string]string) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	return json.Marshal(m)
}

func decodeMap(b []byte) (map[string]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// encodeMeta writes connection metadata for the json column (json, not
// jsonb: jsonb would reorder members and respell numbers inside values).
func encodeMeta(m map[string]json.RawMessage) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	return connmeta.Encode(m), nil
}

// decodeMeta reads connection metadata; each value keeps its stored bytes.
func decodeMeta(b []byte) (map[string]json.RawMessage, error) {
	if len(b) == 0 {
		return nil, nil
	}
	// Every read of a connection (every token read) decodes its metadata:
	// split without reflection when jsonscan can, values sharing b (a
	// fresh copy pgx made for this scan).
	m, ok := jsonscan.Object(b)
	if !ok {
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// nonNil gives text[] columns, which are NOT NULL, an empty array for nil.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nilIfNone(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// lookupNames lower-cases the provider's name and aliases, and returns the
// aliases deduplicated, sorted and without the name.
func lookupNames(p storage.Provider) (name string, aliases []string) {
	name = strings.ToLower(p.Name)
	for _, a := range p.Aliases {
		a = strings.ToLower(a)
		if a != "" && a != name {
			aliases = append(aliases, a)
		}
	}
	slices.Sort(aliases)
	return name, slices.Compact(aliases)
}

func limit(n int) int {
	if n <= 0 {
		return 100
	}
	return n
}
