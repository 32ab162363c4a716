package database_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/database"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/storage/storagetest"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		url     string
		want    database.Target
		wantErr bool
	}{
		{"postgres", "postgres://u:p@db:5432/dromos?sslmode=require", database.Target{Backend: database.Postgres, DSN: "postgres://u:p@db:5432/dromos?sslmode=require"}, false},
		{"postgresql", "postgresql://db/dromos", database.Target{Backend: database.Postgres, DSN: "postgresql://db/dromos"}, false},
		{"postgres upper-case scheme", "POSTGRES://db/dromos", database.Target{Backend: database.Postgres, DSN: "postgres://db/dromos"}, false},
		{"sqlite relative", "sqlite:data/dromos.db", database.Target{Backend: database.SQLite, DSN: "data/dromos.db"}, false},
		{"sqlite absolute", "sqlite:/var/lib/dromos/dromos.db", database.Target{Backend: database.SQLite, DSN: "/var/lib/dromos/dromos.db"}, false},
		{"sqlite slashes relative", "sqlite://data/dromos.db", database.Target{Backend: database.SQLite, DSN: "data/dromos.db"}, false},
		{"sqlite slashes absolute", "sqlite:///var/lib/dromos.db", database.Target{Backend: database.SQLite, DSN: "/var/lib/dromos.db"}, false},
		{"file relative", "file:dromos.db", database.Target{Backend: database.SQLite, DSN: "dromos.db"}, false},
		{"file absolute", "file:///tmp/dromos.db", database.Target{Backend: database.SQLite, DSN: "/tmp/dromos.db"}, false},
		{"sqlite upper-case", "SQLite:x.db", database.Target{Backend: database.SQLite, DSN: "x.db"}, false},
		{"sqlite empty path", "sqlite:", database.Target{}, true},
		{"sqlite slashes empty path", "sqlite://", database.Target{}, true},
		{"file empty path", "file:", database.Target{}, true},
		{"sqlite with query", "sqlite:x.db?_pragma=foo", database.Target{}, true},
		{"file with fragment", "file:x.db#frag", database.Target{}, true},
		{"mysql", "mysql://u:p@db/dromos", database.Target{}, true},
		{"bare path", "/var/lib/dromos.db", database.Target{}, true},
		{"empty", "", database.Target{}, true},
		{"postgres without slashes", "postgres:db", database.Target{}, true},
		{"keyword dsn", "host=db password=secret", database.Target{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := database.Parse(tc.url)
			if tc.wantErr {
				if !errors.Is(err, database.ErrUnsupportedURL) {
					t.Fatalf("Parse(%q) = %+v, %v; want ErrUnsupportedURL", tc.url, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Parse(%q) = %+v, %v; want %+v", tc.url, got, err, tc.want)
			}
		})
	}
}

func TestErrorsHidePassword(t *testing.T) {
	const secret = "s3cr3t-pw"
	for _, tc := range []struct {
		name string
		url  string
	}{
		{"unknown scheme", "mysql://user:" + secret + "@db/dromos"},
		{"no scheme", "user:" + secret + "@db/dromos"},
		{"keyword dsn", "host=db password=" + secret},
		{"opaque", "redis:" + secret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := database.Open(t.Context(), tc.url, database.Options{})
			if !errors.Is(err, database.ErrUnsupportedURL) {
				t.Fatalf("Open: %v, want ErrUnsupportedURL", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error shows the password: %v", err)
			}
			if !strings.Contains(err.Error(), "sqlite:PATH") || !strings.Contains(err.Error(), "postgres://") {
				t.Fatalf("error does not name the accepted forms: %v", err)
			}
		})
	}
}

func TestOpenSQLiteCreatesDirectory(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "a", "b")
	url := "sqlite://" + filepath.Join(dir, "dromos.db")

	_, err := database.Open(ctx, url, database.Options{})
	if !errors.Is(err, database.ErrPendingMigrations) {
		t.Fatalf("Open of a new database without Migrate: %v, want ErrPendingMigrations", err)
	}
	if err := database.Migrate(ctx, url); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		t.Fatalf("parent directory not created: %v", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("directory mode %v, want no access for group and others", perm)
	}
	s, err := database.Open(ctx, url, database.Options{})
	if err != nil {
		t.Fatalf("Open after Migrate: %v", err)
	}
	defer s.Close()
	roundTrip(t, s)
}

func TestOpenPostgres(t *testing.T) {
	url := storagetest.PostgresURL(t)
	s, err := database.Open(t.Context(), url, database.Options{Migrate: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	roundTrip(t, s)
}

// roundTrip shows the store is a working, migrated backend.
func roundTrip(t *testing.T, s storage.Storage) {
	t.Helper()
	ctx := t.Context()
	if err := s.CreateProvider(ctx, storage.Provider{ID: "p1", Name: "google"}); err != nil {
		t.Fatalf("CreateProvider: %v", err)
	}
	p, err := s.GetProviderByName(ctx, "Google")
	if err != nil || p.ID != "p1" {
		t.Fatalf("GetProviderByName = %q, %v", p.ID, err)
	}
}
