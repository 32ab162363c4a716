package postgres_test

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dromos-dev/dromos/internal/database/migration"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/storage/postgres"
	"github.com/dromos-dev/dromos/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.PostgresURL(t) // skip the whole suite at once when unset
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		s, err := postgres.Open(t.Context(), storagetest.PostgresURL(t), postgres.Options{Migrate: true})
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
	ms, err := postgres.Migrations()
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
	url := storagetest.PostgresURL(t)
	logs := &logCounter{}
	log := slog.New(slog.NewTextHandler(logs, nil))

	s, err := postgres.Open(ctx, url, postgres.Options{Migrate: true, Logger: log})
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
	s.Close()

	for _, migrate := range []bool{true, false} {
		s, err := postgres.Open(ctx, url, postgres.Options{Migrate: migrate, Logger: log})
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
	url := storagetest.PostgresURL(t)

	_, err := postgres.Open(ctx, url, postgres.Options{})
	if !errors.Is(err, migration.ErrPending) {
		t.Fatalf("Open of an empty schema without Migrate: %v, want ErrPending", err)
	}

	// Several migrators at once, as several processes would: the advisory
	// lock makes them take turns, each version is applied once.
	const migrators = 4
	errs := make([]error, migrators)
	var wg sync.WaitGroup
	for i := range migrators {
		wg.Go(func() { errs[i] = postgres.Migrate(ctx, url) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Migrate %d: %v", i, err)
		}
	}

	s, err := postgres.Open(ctx, url, postgres.Options{})
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

func TestOpenBadURLHidesPassword(t *testing.T) {
	const password = "hunter2-very-secret"
	_, err := postgres.Open(t.Context(), "postgres://user:"+password+"@127.0.0.1:1/db?sslmode=bogus", postgres.Options{})
	if err == nil {
		t.Fatal("Open with an invalid sslmode succeeded")
	}
	if strings.Contains(err.Error(), password) {
		t.Fatalf("error shows the password: %v", err)
	}
}
