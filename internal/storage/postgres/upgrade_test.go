package postgres

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dromos-dev/dromos/internal/database/migration"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/storage/storagetest"
)

// TestUpgradeKeepsRows writes rows into a schema at migration 1, as the
// previous release left it, then migrates: the rows read back with the new
// fields zero and take part in refresh.
func TestUpgradeKeepsRows(t *testing.T) {
	ctx := t.Context()
	url := storagetest.PostgresURL(t)
	now := time.Date(2031, time.May, 6, 7, 8, 9, 0, time.UTC)

	ms, err := Migrations()
	if err != nil || len(ms) < 2 {
		t.Fatalf("Migrations = %d, %v; want at least 2", len(ms), err)
	}
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("parse URL: %v", err)
	}
	conn, err := pgx.ConnectConfig(ctx, pcfg.ConnConfig)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{createMigrationsTable, nil},
			{ms[0].SQL, nil},
			{`INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, []any{ms[0].Version, ms[0].Name}},
			{`INSERT INTO connections (id, status, created_at, last_refresh_at, version) VALUES ('c1', 'active', $1, $2, 3)`,
				[]any{now.Add(-48 * time.Hour), now.Add(-time.Hour)}},
			{`INSERT INTO tokens (connection_id, ciphertext, expires_at) VALUES ('c1', '\x00ff', $1)`,
				[]any{now.Add(time.Minute)}},
			// A consent that failed, and a reconnect that failed after the
			// connection had been active (its subject shows it).
			{`INSERT INTO connections (id, status, created_at, updated_at) VALUES ('c2', 'failed', $1, $1)`,
				[]any{now.Add(-400 * time.Hour)}},
			{`INSERT INTO connections (id, status, subject, created_at, updated_at) VALUES ('c3', 'failed', 'sub-1', $1, $1)`,
				[]any{now.Add(-400 * time.Hour)}},
		} {
			if _, err := tx.Exec(ctx, q.sql, q.args...); err != nil {
				return err
			}
		}
		return nil
	})
	conn.Close(ctx)
	if err != nil {
		t.Fatalf("write the old schema: %v", err)
	}

	if _, err := Open(ctx, url, Options{}); !errors.Is(err, migration.ErrPending) {
		t.Fatalf("Open of the old schema without Migrate: %v, want ErrPending", err)
	}
	s, err := Open(ctx, url, Options{Migrate: true})
	if err != nil {
		t.Fatalf("Open with Migrate: %v", err)
	}
	defer s.Close()

	c, err := s.GetConnection(ctx, "c1")
	if err != nil {
		t.Fatalf("GetConnection: %v", err)
	}
	if !c.RefreshLeaseUntil.IsZero() || c.RefreshLeaseOwner != "" || c.Version != 3 {
		t.Fatalf("old connection: lease %v owner %q version %d, want zero, empty, 3", c.RefreshLeaseUntil, c.RefreshLeaseOwner, c.Version)
	}
	tok, err := s.GetToken(ctx, "c1")
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	if tok.AADVersion != 1 {
		t.Fatalf("old token: AADVersion %d, want 1 (sealed before binding)", tok.AADVersion)
	}
	if tok.ExpirySource != "" || !tok.ExpiresAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("old token: ExpirySource %q ExpiresAt %v", tok.ExpirySource, tok.ExpiresAt)
	}
	due, err := s.DueForRefresh(ctx, storage.DueFilter{Now: now, ExpiringBefore: now.Add(5 * time.Minute)})
	if err != nil || !slices.Equal(due, []string{"c1"}) {
		t.Fatalf("DueForRefresh = %q, %v; want [c1]", due, err)
	}
	c, err = s.UpdateConnection(ctx, "c1", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		c.RefreshLeaseUntil, c.RefreshLeaseOwner = now.Add(time.Minute), "broker-1"
		return c, storage.TokenChange{}, nil
	})
	if err != nil || c.RefreshLeaseOwner != "broker-1" || c.Version != 4 {
		t.Fatalf("claim the lease of the old row: owner %q version %d, %v", c.RefreshLeaseOwner, c.Version, err)
	}
	// Only the row that was never active is purged.
	if n, err := s.PurgeConnections(ctx, now); err != nil || n != 1 {
		t.Fatalf("PurgeConnections = %d, %v; want 1", n, err)
	}
	for id, kept := range map[string]bool{"c1": true, "c2": false, "c3": true} {
		if _, err := s.GetConnection(ctx, id); (err == nil) != kept {
			t.Errorf("%s after the purge: %v (kept %v)", id, err, kept)
		}
	}
}
