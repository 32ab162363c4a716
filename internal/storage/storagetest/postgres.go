package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresEnv names the variable holding the URL of a PostgreSQL database
// the tests may create schemas in.
const PostgresEnv = "DROMOS_TEST_POSTGRES_URL"

// PostgresURL returns a URL to the database named by DROMOS_TEST_POSTGRES_URL
// whose sessions use a new, empty schema of their own (through the
// search_path run-time parameter), dropped when t ends. It skips t when the
// variable is unset. The variable must hold a postgres:// URL.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skipf("PostgreSQL tests skipped: set %s to a postgres:// URL of a database the tests may create schemas in", PostgresEnv)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// The URL may hold a password: never print it.
		t.Fatalf("%s must be a postgres:// or postgresql:// URL", PostgresEnv)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("random schema name: %v", err)
	}
	schema := "dromos_test_" + hex.EncodeToString(b[:])

	exec := func(ctx context.Context, sql string) error {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
	})

	q := u.Query()
	q.Set("search_path", schema)
	// Tests start several brokers at once, and `go test ./...` runs two
	// packages side by side: with the broker's default pool (16 or more per
	// process) that passes PostgreSQL's default max_connections of 100 and
	// sessions fail with "too many clients". A smaller pool keeps the whole
	// suite within it; a pool_max_conns in the variable's URL still wins.
	if !q.Has("pool_max_conns") {
		q.Set("pool_max_conns", "8")
	}
	u.RawQuery = q.Encode()
	return u.String()
}
