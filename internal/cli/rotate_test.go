package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/binding"
	"github.com/dromos-dev/dromos/internal/cli"
	"github.com/dromos-dev/dromos/internal/database"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/storage/storagetest"
	"github.com/dromos-dev/dromos/internal/vault"
)

func TestRotateKeysCommand(t *testing.T) {
	db := "DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "d.db")
	k1 := "ENCRYPTION_KEY=AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
	st := "STATE_KEY=ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
	var out, errb bytes.Buffer
	// rotate-keys works on an existing database only.
	if code := cli.Run(context.Background(), []string{"migrate"}, &out, &errb, []string{db}); code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, errb.String())
	}
	out.Reset()
	if code := cli.Run(context.Background(), []string{"rotate-keys"}, &out, &errb, []string{db, k1, st}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "ciphertexts still on old keys: 0") {
		t.Fatalf("output %q", out.String())
	}
	out.Reset()
	// A bad key list is refused, naming the variable and not the value.
	code := cli.Run(context.Background(), []string{"rotate-keys", "--check"}, &out, &errb,
		[]string{db, "ENCRYPTION_KEYS=2:not-base64,1:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=", st})
	if code == 0 || !strings.Contains(errb.String(), "ENCRYPTION_KEYS entry 1") || strings.Contains(errb.String(), "not-base64") {
		t.Fatalf("bad keys: exit %d, %q", code, errb.String())
	}
}

const (
	rotKey1 = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
	rotKey2 = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
	rotKey9 = "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8="
	// rotStateKey is no encryption key: the broker refuses one that is.
	rotStateKey = "YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8="
)

// Without DATABASE_URL, or with a SQLite file that does not exist,
// rotate-keys refuses instead of creating an empty database that reports
// "0 on old keys", the answer after which an operator removes the old key.
func TestRotateKeysNeedsAnExistingDatabase(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	keys := []string{"ENCRYPTION_KEY=" + rotKey1, "STATE_KEY=" + rotStateKey}
	for _, tc := range []struct {
		name, db, want string
	}{
		{"no DATABASE_URL", "", "DATABASE_URL is required"},
		{"blank DATABASE_URL", "DATABASE_URL= ", "DATABASE_URL is required"},
		{"missing SQLite file", "DATABASE_URL=sqlite:" + filepath.Join(dir, "nope", "d.db"), "SQLite file that does not exist"},
		{"missing relative SQLite file", "DATABASE_URL=sqlite:dromos.db", "SQLite file that does not exist"},
	} {
		for _, args := range [][]string{{"rotate-keys"}, {"rotate-keys", "--check"}} {
			t.Run(tc.name+" "+strings.Join(args, " "), func(t *testing.T) {
				env := append([]string{}, keys...)
				if tc.db != "" {
					env = append(env, tc.db)
				}
				var out, errb bytes.Buffer
				code := cli.Run(context.Background(), args, &out, &errb, env)
				if code == 0 || !strings.Contains(errb.String(), tc.want) || strings.Contains(out.String(), "old keys") {
					t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
				}
				if entries, _ := os.ReadDir(dir); len(entries) != 0 {
					t.Fatalf("files created: %v", entries)
				}
			})
		}
	}
}

// Rows sealed under a key no longer listed are counted and named, the
// others are re-sealed, and the command exits non-zero.
func TestRotateKeysReportsRowsItCannotOpen(t *testing.T) {
	for name, dbURL := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "d.db") },
		"postgres": func(t *testing.T) string { return storagetest.PostgresURL(t) },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := dbURL(t)
			store, err := database.Open(ctx, db, database.Options{Migrate: true})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			ids := []string{"00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000003"}
			for i, id := range ids {
				k := rotKey1
				if i != 1 {
					k = rotKey9 // a key the operator no longer lists
				}
				kb, _ := vault.ParseKey(k)
				kr, _ := vault.NewKeyring(vault.Key{ID: 1, Secret: kb})
				secret, _ := kr.Seal([]byte("s"), binding.LegacySecretAAD(id))
				if err := store.CreateProvider(ctx, storage.Provider{ID: id, Name: fmt.Sprintf("p%d", i), Config: []byte(`{}`),
					ClientSecret: secret, CreatedAt: now, UpdatedAt: now}); err != nil {
					t.Fatal(err)
				}
			}
			store.Close()
			var out, errb bytes.Buffer
			code := cli.Run(ctx, []string{"rotate-keys"}, &out, &errb,
				[]string{"DATABASE_URL=" + db, "ENCRYPTION_KEYS=2:" + rotKey2 + ",1:" + rotKey1, "STATE_KEY=" + rotStateKey})
			o := out.String()
			if code == 0 || !strings.Contains(o, "ciphertexts re-sealed: 1") || !strings.Contains(o, "rows that could not be opened: 2") ||
				!strings.Contains(o, "provider "+ids[0]) || !strings.Contains(o, "provider "+ids[2]) || strings.Contains(o, "provider "+ids[1]) ||
				!strings.Contains(errb.String(), "2 rows hold a ciphertext no key in ENCRYPTION_KEYS opens") {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, o, errb.String())
			}
		})
	}
}
