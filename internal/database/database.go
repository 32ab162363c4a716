package database

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/dromos-dev/dromos/internal/database/migration"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/storage/postgres"
	"github.com/dromos-dev/dromos/internal/storage/sqlite"
)

// ErrUnsupportedURL is returned (wrapped) for a DATABASE_URL of no accepted
// form.
var ErrUnsupportedURL = errors.New("database: DATABASE_URL must be postgres://…, postgresql://…, sqlite:PATH, sqlite://PATH or file:PATH")

// ErrPendingMigrations is returned (wrapped) by Open without Migrate when the
// schema is behind this binary: run `dromos migrate`.
var ErrPendingMigrations = migration.ErrPending

// Options configures Open.
type Options struct {
	// Logger receives migration progress; nil discards.
	Logger *slog.Logger
	// Migrate applies pending migrations before Open returns. Without it,
	// Open fails with ErrPendingMigrations on an outdated schema.
	Migrate bool
	// QueryTracer is handed to the PostgreSQL backend (SQLite takes none).
	QueryTracer pgx.QueryTracer
}

// Backend names a storage implementation.
type Backend string

const (
	Postgres Backend = "postgres"
	SQLite   Backend = "sqlite"
)

// Target is a parsed DATABASE_URL.
type Target struct {
	Backend Backend
	// DSN is what the backend opens: the URL for PostgreSQL, the file path
	// for SQLite.
	DSN string
}

// Parse tells which backend url names. For SQLite, PATH is everything after
// the prefix; "sqlite:///var/lib/dromos.db" and "file:///var/lib/dromos.db"
// are absolute, "sqlite://data/dromos.db" and "file:data/dromos.db"
// relative. Query strings are refused rather than becoming part of a file
// name.
func Parse(url string) (Target, error) {
	lower := strings.ToLower(url)
	for _, scheme := range []string{"postgres://", "postgresql://"} {
		if strings.HasPrefix(lower, scheme) {
			// pgx only recognizes a lower-case scheme.
			return Target{Backend: Postgres, DSN: scheme + url[len(scheme):]}, nil
		}
	}
	for _, prefix := range []string{"sqlite://", "sqlite:", "file://", "file:"} {
		if !strings.HasPrefix(lower, prefix) {
			continue
		}
		path := url[len(prefix):]
		switch {
		case path == "":
			return Target{}, fmt.Errorf("%w: %s needs a file path", ErrUnsupportedURL, prefix)
		case strings.ContainsAny(path, "?#"):
			return Target{}, fmt.Errorf("%w: %s does not take query parameters or fragments", ErrUnsupportedURL, prefix)
		}
		return Target{Backend: SQLite, DSN: path}, nil
	}
	if scheme, ok := schemeOf(url); ok {
		return Target{}, fmt.Errorf("%w (got scheme %q)", ErrUnsupportedURL, scheme)
	}
	return Target{}, fmt.Errorf("%w (got no scheme)", ErrUnsupportedURL)
}

// schemeOf returns the URL scheme (RFC 3986: a letter, then letters, digits,
// '+', '-', '.') when url starts with one. Nothing after the colon is ever
// returned, so a password cannot leak through it.
func schemeOf(url string) (string, bool) {
	i := strings.IndexByte(url, ':')
	if i <= 0 || i > 32 {
		return "", false
	}
	for j, r := range url[:i] {
		letter := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !letter && (j == 0 || !(r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.')) {
			return "", false
		}
	}
	return url[:i], true
}

// Open opens the backend named by url. For SQLite it creates the file's
// parent directory when missing.
func Open(ctx context.Context, url string, opts Options) (storage.Storage, error) {
	t, err := Parse(url)
	if err != nil {
		return nil, err
	}
	switch t.Backend {
	case Postgres:
		return postgres.Open(ctx, t.DSN, postgres.Options{Logger: opts.Logger, Migrate: opts.Migrate, QueryTracer: opts.QueryTracer})
	default:
		if err := makeParent(t.DSN); err != nil {
			return nil, err
		}
		return sqlite.Open(ctx, t.DSN, sqlite.Options{Logger: opts.Logger, Migrate: opts.Migrate})
	}
}

// Migrate applies pending migrations to the database named by url.
func Migrate(ctx context.Context, url string) error {
	t, err := Parse(url)
	if err != nil {
		return err
	}
	switch t.Backend {
	case Postgres:
		return postgres.Migrate(ctx, t.DSN)
	default:
		if err := makeParent(t.DSN); err != nil {
			return err
		}
		return sqlite.Migrate(ctx, t.DSN)
	}
}

// makeParent creates the directory of path, private to the user: it holds
// sealed tokens and client secrets.
func makeParent(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("database: create directory for %s: %w", path, err)
	}
	return nil
}
