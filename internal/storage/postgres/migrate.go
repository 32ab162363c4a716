package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dromos-dev/dromos/internal/database/migration"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the pg_advisory_lock key that serializes migrators. It is
// database-wide, so schemas sharing a database also take turns, which only
// costs time.
const migrationLock int64 = 0x64726f6d6f73 // "dromos"

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`

// Migrations returns the embedded migrations in order.
func Migrations() ([]migration.Migration, error) {
	return migration.Load(migrationFiles, "migrations")
}

// Migrate applies pending migrations to the database at url. Several
// processes may call it at once; they take turns on an advisory lock.
func Migrate(ctx context.Context, url string) error {
	// Parsed as a pool URL so that the pool_* parameters the broker accepts
	// (pool_max_conns…) are taken off rather than sent to the server as
	// session settings, which it would refuse.
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("postgres: parse database URL: %w", err)
	}
	return migrateConn(ctx, cfg.ConnConfig, slog.New(slog.DiscardHandler))
}

// migrateConn runs on a connection of its own rather than one from the pool:
// closing it always releases the session advisory lock, even when the unlock
// statement cannot be sent.
func migrateConn(ctx context.Context, cfg *pgx.ConnConfig, log *slog.Logger) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return fmt.Errorf("postgres: migrate: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	if _, err := conn.Exec(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("postgres: migrate: create schema_migrations: %w", err)
	}
	versions, err := appliedVersions(ctx, conn)
	if err != nil {
		return fmt.Errorf("postgres: migrate: read schema_migrations: %w", err)
	}
	for _, m := range ms {
		if slices.Contains(versions, m.Version) {
			continue
		}
		if err := applyOne(ctx, conn, m); err != nil {
			return err
		}
		log.Info("database migration applied", "backend", "postgres", "version", m.Version, "name", m.Name)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", migrationLock); err != nil {
		return fmt.Errorf("postgres: migrate: unlock: %w", err)
	}
	return nil
}

func applyOne(ctx context.Context, conn *pgx.Conn, m migration.Migration) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate %s: begin: %w", m.Name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
	if _, err := tx.Exec(ctx, m.SQL); err != nil {
		return fmt.Errorf("postgres: migrate %s: %w", m.Name, err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name); err != nil {
		return fmt.Errorf("postgres: migrate %s: record version: %w", m.Name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: migrate %s: commit: %w", m.Name, err)
	}
	return nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// appliedVersions returns the applied versions in ascending order.
func appliedVersions(ctx context.Context, q querier) ([]int, error) {
	rows, err := q.Query(ctx, "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		return nil, err
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, err
	}
	out := make([]int, len(versions))
	for i, v := range versions {
		out[i] = int(v)
	}
	return out, nil
}

// AppliedMigrations returns the versions recorded in schema_migrations in
// ascending order; empty when the database was never migrated.
func (s *Store) AppliedMigrations(ctx context.Context) ([]int, error) {
	applied, err := appliedVersions(ctx, s.pool)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: read schema_migrations: %w", err)
	}
	return applied, nil
}

// checkSchema fails unless every embedded migration has been applied. Newer
// versions from a later binary are tolerated so a rollback keeps working as
// long as migrations stay additive.
func (s *Store) checkSchema(ctx context.Context) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	versions, err := s.AppliedMigrations(ctx)
	if err != nil {
		return err
	}
	applied := make(map[int]bool, len(versions))
	for _, v := range versions {
		applied[v] = true
	}
	missing := 0
	for _, m := range ms {
		if !applied[m.Version] {
			missing++
		}
	}
	if missing > 0 {
		return fmt.Errorf("postgres: %w: %d of %d not applied; run `dromos migrate`", migration.ErrPending, missing, len(ms))
	}
	return nil
}
