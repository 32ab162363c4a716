package sqlite

import (
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/database/migration"
	"github.com/dromos-dev/dromos/internal/storage"
)

// TestUpgradeKeepsRows writes rows into a schema at migration 1, as the
// previous release left it, then migrates: the rows read back with the new
// fields zero and take part in refresh.
func TestUpgradeKeepsRows(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "dromos.db")
	now := time.Date(2031, time.May, 6, 7, 8, 9, 0, time.UTC)

	s, err := open(ctx, path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	ms, err := Migrations()
	if err != nil || len(ms) < 2 {
		t.Fatalf("Migrations = %d, %v; want at least 2", len(ms), err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{createMigrationsTable, nil},
			{ms[0].SQL, nil},
			{`INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, []any{ms[0].Version, ms[0].Name}},
			{`INSERT INTO connections (id, status, created_at, last_refresh_at, version) VALUES ('c1', 'active', ?, ?, 3)`,
				[]any{now.Add(-48 * time.Hour).UnixNano(), now.Add(-time.Hour).UnixNano()}},
			{`INSERT INTO tokens (connection_id, ciphertext, expires_at) VALUES ('c1', x'00ff', ?)`,
				[]any{now.Add(time.Minute).UnixNano()}},
			// A consent that failed, and a reconnect that failed after the
			// connection had been active (its subject shows it).
			{`INSERT INTO connections (id, status, created_at, updated_at) VALUES ('c2', 'failed', ?, ?)`,
				[]any{now.Add(-400 * time.Hour).UnixNano(), now.Add(-400 * time.Hour).UnixNano()}},
			{`INSERT INTO connections (id, status, subject, created_at, updated_at) VALUES ('c3', 'failed', 'sub-1', ?, ?)`,
				[]any{now.Add(-400 * time.Hour).UnixNano(), now.Add(-400 * time.Hour).UnixNano()}},
		} {
			if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("write the old schema: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	if _, err := Open(ctx, path, Options{}); !errors.Is(err, migration.ErrPending) {
		t.Fatalf("Open of the old schema without Migrate: %v, want ErrPending", err)
	}
	s, err = Open(ctx, path, Options{Migrate: true})
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
