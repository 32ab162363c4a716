package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/dromos-dev/dromos/internal/database/migration"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL DEFAULT (unixepoch())
) STRICT`

// Migrations returns the embedded migrations in order.
func Migrations() ([]migration.Migration, error) {
	return migration.Load(migrationFiles, "migrations")
}

// Migrate applies pending migrations to the database file at path, creating
// the file if missing.
func Migrate(ctx context.Context, path string) error {
	s, err := open(ctx, path, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	return errors.Join(s.migrate(ctx), s.Close())
}

// migrate applies each pending migration in its own IMMEDIATE transaction
// and re-reads the applied versions inside it: another process migrating the
// same file holds the write lock until it commits, so each version is
// applied exactly once.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	for _, m := range ms {
		applied := false
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
				return fmt.Errorf("sqlite: migrate: create schema_migrations: %w", err)
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
				return fmt.Errorf("sqlite: migrate: read schema_migrations: %w", err)
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("sqlite: migrate %s: %w", m.Name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, m.Version, m.Name); err != nil {
				return fmt.Errorf("sqlite: migrate %s: record version: %w", m.Name, err)
			}
			applied = true
			return nil
		})
		if err != nil {
			return err
		}
		if applied {
			s.log.Info("database migration applied", "backend", "sqlite", "version", m.Version, "name", m.Name)
		}
	}
	return nil
}

// AppliedMigrations returns the versions recorded in schema_migrations in
// ascending order; empty when the database was never migrated.
func (s *Store) AppliedMigrations(ctx context.Context) ([]int, error) {
	var exists int
	err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&exists)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read schema_migrations: %w", err)
	}
	if exists == 0 {
		return nil, nil
	}
	rows, err := s.read.QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read schema_migrations: %w", err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("sqlite: read schema_migrations: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: read schema_migrations: %w", err)
	}
	return out, nil
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
	var missing []string
	for _, m := range ms {
		if !slices.Contains(versions, m.Version) {
			missing = append(missing, m.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("sqlite: %w: %s not applied; run `dromos migrate`", migration.ErrPending, strings.Join(missing, ", "))
	}
	return nil
}
