package rotate_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/binding"
	"github.com/dromos-dev/dromos/internal/database"
	"github.com/dromos-dev/dromos/internal/rotate"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/storage/storagetest"
	"github.com/dromos-dev/dromos/internal/tokenset"
)

// Rows no key of the ring opens (sealed under a key that is not listed)
// are named, and the pass goes on to re-seal every other row instead of
// stopping at the first one.
func TestKeysReportsUnopenedRowsAndGoesOn(t *testing.T) {
	for name, dbURL := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + t.TempDir() + "/r.db" },
		"postgres": func(t *testing.T) string { return storagetest.PostgresURL(t) },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store, err := database.Open(ctx, dbURL(t), database.Options{Migrate: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { store.Close() })
			k1, k2, lost := key(t, 1), key(t, 2), key(t, 9)
			oldRing, lostRing := ring(t, k1), ring(t, lost)
			now := time.Now().UTC()

			// Ids in ascending order, so the unreadable rows come first.
			badProv, goodProv := "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"
			for _, p := range []struct {
				id string
				kr interface {
					Seal(plaintext, aad []byte) ([]byte, error)
				}
			}{{badProv, lostRing}, {goodProv, oldRing}} {
				secret, _ := p.kr.Seal([]byte("client-secret"), binding.LegacySecretAAD(p.id))
				if err := store.CreateProvider(ctx, storage.Provider{ID: p.id, Name: "p" + p.id[len(p.id)-1:], Config: []byte(`{}`),
					ClientSecret: secret, CreatedAt: now, UpdatedAt: now}); err != nil {
					t.Fatal(err)
				}
			}
			badVerifier, badToken, good := "10000000-0000-4000-8000-000000000001", "10000000-0000-4000-8000-000000000002",
				"10000000-0000-4000-8000-000000000003"
			for _, id := range []string{badVerifier, badToken, good} {
				kr := oldRing
				if id == badVerifier {
					kr = lostRing
				}
				verifier, _ := kr.Seal([]byte("verifier"), tokenset.VerifierAAD(id))
				conn := storage.Connection{ID: id, WorkspaceID: "w", UserID: "u", ProviderID: goodProv,
					ProviderName: "pb", Status: storage.StatusPending, PKCEVerifier: verifier, CreatedAt: now, UpdatedAt: now,
					ExpiresAt: now.Add(time.Hour)}
				if err := store.CreateConnection(ctx, conn); err != nil {
					t.Fatal(err)
				}
				tokRing := oldRing
				if id == badToken {
					tokRing = lostRing
				}
				sealed, _ := tokenset.Seal(tokRing, conn, tokenset.Set{AccessToken: "at", TokenType: "Bearer"})
				if _, err := store.UpdateConnection(ctx, id, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
					c.Status = storage.StatusActive
					return c, storage.TokenChange{Put: &storage.Token{ConnectionID: id, Ciphertext: sealed, AADVersion: tokenset.AADVersion,
						CreatedAt: now, UpdatedAt: now}}, nil
				}); err != nil {
					t.Fatal(err)
				}
			}

			st, err := rotate.Keys(ctx, store, ring(t, k2, k1), 1, nil)
			if err != nil {
				t.Fatalf("rotation stopped: %v", err)
			}
			want := []string{"provider " + badProv, "connection " + badVerifier, "connection " + badToken}
			if !slices.Equal(st.Unopened, want) {
				t.Fatalf("unopened %v, want %v", st.Unopened, want)
			}
			// Re-sealed: the good provider's secret and the good
			// connection's verifier and token. A connection is re-sealed in
			// one transaction, so nothing of a row with an unreadable part
			// is written: 1 secret + 2 + 2 ciphertexts stay on old keys.
			if st.Providers != 2 || st.Connections != 3 || st.Resealed != 3 || st.OnOldKeys != 5 {
				t.Fatalf("stats %+v", st)
			}
			newOnly := ring(t, k2)
			p, _ := store.GetProvider(ctx, goodProv)
			if _, err := newOnly.Open(p.ClientSecret, binding.LegacySecretAAD(goodProv)); err != nil {
				t.Fatalf("the readable provider after the unreadable one was not re-sealed: %v", err)
			}
			tok, _ := store.GetToken(ctx, good)
			gc, _ := store.GetConnection(ctx, good)
			if set, err := tokenset.Open(newOnly, gc, tok); err != nil || set.AccessToken != "at" {
				t.Fatalf("the readable connection was not re-sealed: %v", err)
			}
			// The unreadable rows are untouched.
			bp, _ := store.GetProvider(ctx, badProv)
			if _, err := lostRing.Open(bp.ClientSecret, binding.LegacySecretAAD(badProv)); err != nil {
				t.Fatalf("unreadable provider changed: %v", err)
			}
		})
	}
}
