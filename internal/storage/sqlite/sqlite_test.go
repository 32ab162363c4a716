package sqlite_test

import (
	"bytes"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dromos-dev/dromos/internal/database/migration"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/storage/sqlite"
	"github.com/dromos-dev/dromos/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "dromos.db"), sqlite.Options{Migrate: true})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// logCounter counts migration log lines, to tell whether Open migrated.
type logCounter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logCounter) applied() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), "database migration applied")
}

func wantVersions(t *testing.T, got []int) {
	t.Helper()
	ms, err := sqlite.Migrations()
	if err != nil {
		t.Fatalf("Migrations: %v", err)
	}
	var want []int
	for _, m := range ms {
		want = append(want, m.Version)
	}
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("applied versions %v, want %v", got, want)
	}
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	// '?', '#' and '%' would be taken for URI syntax if the path were not
	// escaped.
	path := filepath.Join(t.TempDir(), "odd ?name#%41.db")
	logs := &logCounter{}
	log := slog.New(slog.NewTextHandler(logs, nil))

	s, err := sqlite.Open(ctx, path, sqlite.Options{Migrate: true, Logger: log})
	if err != nil {
		t.Fatalf("first Open: %v", err)
	}
	first := logs.applied()
	if first == 0 {
		t.Fatal("first Open applied no migration")
	}
	if err := s.CreateProvider(ctx, storage.Provider{ID: "p1", Name: "google", Aliases: []string{"gmail"}}); err != nil {
		t.Fatalf("CreateProvider: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "odd*.db")); len(matches) != 1 || matches[0] != path {
		t.Fatalf("database file at %q, want %q", matches, path)
	}

	for _, migrate := range []bool{true, false} {
		s, err := sqlite.Open(ctx, path, sqlite.Options{Migrate: migrate, Logger: log})
		if err != nil {
			t.Fatalf("reopen (Migrate %v): %v", migrate, err)
		}
		p, err := s.GetProviderByName(ctx, "GMAIL")
		if err != nil || p.ID != "p1" {
			t.Fatalf("after reopen: GetProviderByName = %q, %v", p.ID, err)
		}
		versions, err := s.AppliedMigrations(ctx)
		if err != nil {
			t.Fatalf("AppliedMigrations: %v", err)
		}
		wantVersions(t, versions)
		s.Close()
	}
	if n := logs.applied(); n != first {
		t.Fatalf("reopening applied %d more migrations, want none", n-first)
	}
}

func TestMigrationVersions(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "dromos.db")

	_, err := sqlite.Open(ctx, path, sqlite.Options{})
	if !errors.Is(err, migration.ErrPending) {
		t.Fatalf("Open of an empty database without Migrate: %v, want ErrPending", err)
	}

	// Several migrators at once, as several processes would: each version
	// is applied once and none of them fails on a busy database.
	const migrators = 4
	errs := make([]error, migrators)
	var wg sync.WaitGroup
	for i := range migrators {
		wg.Go(func() { errs[i] = sqlite.Migrate(ctx, path) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Migrate %d: %v", i, err)
		}
	}

	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open after Migrate: %v", err)
	}
	defer s.Close()
	versions, err := s.AppliedMigrations(ctx)
	if err != nil {
		t.Fatalf("AppliedMigrations: %v", err)
	}
	wantVersions(t, versions)
}

func TestOpenRefusesMemory(t *testing.T) {
	for _, path := range []string{"", ":memory:"} {
		if _, err := sqlite.Open(t.Context(), path, sqlite.Options{Migrate: true}); err == nil {
			t.Errorf("Open(%q) succeeded; an in-memory database would differ per pool", path)
		}
	}
}
