package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

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
}

// Store is a storage.Storage on one SQLite file. Safe for concurrent use.
type Store struct {
	write *sql.DB // one connection, IMMEDIATE transactions
	read  *sql.DB // read-only connections
	log   *slog.Logger
	// tokenRead is the token read's query, prepared once: SQLite would
	// otherwise parse and plan it on every read, which profiling showed
	// to be 40 % of the read's CPU (docs/PERFORMANCE.md).
	tokenRead *sql.Stmt
}

var _ storage.Storage = (*Store)(nil)

// busyTimeout bounds how long a statement waits for another process's lock.
const busyTimeout = 10 * time.Second

const readConns = 4

var errMemory = errors.New("an in-memory database cannot be shared by the read and write pools; give a file path")

// Open opens (creating if missing) the database file at path. The parent
// directory must exist.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := open(ctx, path, log)
	if err != nil {
		return nil, err
	}
	if opts.Migrate {
		err = s.migrate(ctx)
	} else {
		err = s.checkSchema(ctx)
	}
	if err == nil {
		s.tokenRead, err = s.read.PrepareContext(ctx, getConnectionTokenSQL)
		err = wrap("prepare the token read", err)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func open(ctx context.Context, path string, log *slog.Logger) (*Store, error) {
	if path == "" || path == ":memory:" {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, errMemory)
	}
	write, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	// The writer connects first so that WAL mode is set before any reader
	// opens the file.
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	read, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	read.SetMaxOpenConns(readConns)
	read.SetMaxIdleConns(readConns)
	if err := read.PingContext(ctx); err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	return &Store{write: write, read: read, log: log}, nil
}

// dsn builds a file: URI so that any path, even one holding '?' or '#',
// reaches SQLite intact, with the driver's settings in the query.
func dsn(path string, write bool) string {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_foreign_keys", "1")
	// FULL, not NORMAL: a refresh token rotated by the provider and lost on
	// power failure would break the connection for good.
	q.Set("_synchronous", "FULL")
	if write {
		q.Set("_journal_mode", "WAL")
		q.Set("_txlock", "immediate")
	} else {
		q.Set("_query_only", "1")
	}
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + escaped + "?" + q.Encode()
}

// Ping reports whether both pools answer.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.write.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	if err := s.read.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close closes both pools.
func (s *Store) Close() error {
	var stmt error
	if s.tokenRead != nil {
		stmt = s.tokenRead.Close()
	}
	return errors.Join(stmt, s.read.Close(), s.write.Close())
}

// wrap prefixes err with the operation and maps driver errors to the
// storage sentinels. Only names and ids go into op, never row values.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: %s: %w", op, storage.ErrNotFound)
	}
	var se *sqlite.Error
	if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return fmt.Errorf("sqlite: %s: %w", op, storage.ErrAlreadyExists)
	}
	// Another process held the file past busy_timeout: try again shortly
	// (503 with Retry-After), not a 500.
	if errors.As(err, &se) && (se.Code()&0xff == sqlite3.SQLITE_BUSY || se.Code()&0xff == sqlite3.SQLITE_LOCKED) {
		return fmt.Errorf("sqlite: %s: %w: %w", op, storage.ErrUnavailable, err)
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// inTx runs fn in an IMMEDIATE transaction on the writer, rolling back on
// any error. fn's error is returned unchanged so closures keep errors.Is.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return wrap("commit", err)
	}
	return nil
}

var (
	minTime      = time.Unix(0, math.MinInt64)
	maxTime      = time.Unix(0, math.MaxInt64)
	errTimeRange = errors.New("time outside the years 1678-2262 cannot be stored")
)

// checkTimes guards nanos: UnixNano is undefined outside its range.
func checkTimes(ts ...time.Time) error {
	for _, t := range ts {
		if !t.IsZero() && (t.Before(minTime) || t.After(maxTime)) {
			return errTimeRange
		}
	}
	return nil
}

func nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// blob keeps empty byte slices out of the database so that nil and empty
// read back the same way.
func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func encodeMap(m map[string]string) (any, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

func decodeMap(s sql.NullString) (map[string]string, error) {
	if !s.Valid || s.String == "" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s.String), &m); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// encodeMeta writes connection metadata with each value's bytes as they are.
func encodeMeta(m map[string]json.RawMessage) (any, error) {
	if len(m) == 0 {
		return nil, nil
	}
	return string(connmeta.Encode(m)), nil
}

// decodeMeta reads connection metadata; each value keeps its stored bytes.
func decodeMeta(s sql.NullString) (map[string]json.RawMessage, error) {
	if !s.Valid || s.String == "" {
		return nil, nil
	}
	// Split without reflection when jsonscan can (every connection read
	// decodes this); the values share the fresh copy of the column.
	b := []byte(s.String)
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

func encodeList(l []string) (any, error) {
	if len(l) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(l)
	return string(b), err
}

func decodeList(s sql.NullString) ([]string, error) {
	if !s.Valid || s.String == "" {
		return nil, nil
	}
	var l []string
	if err := json.Unmarshal([]byte(s.String), &l); err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
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

// deleteByID deletes the row of table with that id; table is a constant of
// the caller, never input.
func deleteByID(ctx context.Context, db *sql.DB, table, id, op string) error {
	res, err := db.ExecContext(ctx, `DELETE FROM `+table+` WHERE id = ?`, id)
	if err != nil {
		return wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap(op, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: %s: %w", op, storage.ErrNotFound)
	}
	return nil
}
