package rotate_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dromos-dev/dromos/internal/binding"
	"github.com/dromos-dev/dromos/internal/database"
	"github.com/dromos-dev/dromos/internal/rotate"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
	"github.com/dromos-dev/dromos/internal/vault"
	"github.com/dromos-dev/dromos/internal/webhook/endpoint"
)

func key(t *testing.T, id byte) vault.Key {
	t.Helper()
	k := vault.Key{ID: id}
	if _, err := rand.Read(k.Secret[:]); err != nil {
		t.Fatal(err)
	}
	return k
}

func ring(t *testing.T, primary vault.Key, older ...vault.Key) *vault.Keyring {
	t.Helper()
	kr, err := vault.NewKeyring(primary, older...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// Rows sealed under key 1 move to key 2; afterwards a key ring holding only
// key 2 opens every one of them, and a second pass finds nothing to do.
// Rows sealed with the legacy additional data (before the binding) and
// with the current one both rotate; legacy tokens move to the owner
// binding on the way.
func TestKeysResealsEveryCiphertext(t *testing.T) {
	ctx := context.Background()
	store, err := database.Open(ctx, "sqlite:"+t.TempDir()+"/r.db", database.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	k1, k2 := key(t, 1), key(t, 2)
	oldRing := ring(t, k1)

	provID, boundID := uuid.NewString(), uuid.NewString()
	secret, _ := oldRing.Seal([]byte("client-secret"), binding.LegacySecretAAD(provID))
	now := time.Now().UTC()
	if err := store.CreateProvider(ctx, storage.Provider{ID: provID, Name: "p", Config: []byte(`{}`), ClientSecret: secret,
		SecretAADVersion: binding.LegacyVersion, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	bound := storage.Provider{ID: boundID, Name: "q", Config: []byte(`{"token_url":"https://q.example/token"}`),
		Endpoints: []byte(`{"token_endpoint":"https://q.example/token"}`), SecretAADVersion: binding.Version, CreatedAt: now, UpdatedAt: now}
	aad, err := binding.SecretAAD(bound)
	if err != nil {
		t.Fatal(err)
	}
	bound.ClientSecret, _ = oldRing.Seal([]byte("bound-secret"), aad)
	if err := store.CreateProvider(ctx, bound); err != nil {
		t.Fatal(err)
	}
	var conns []string
	for i := range 3 {
		id := uuid.NewString()
		conns = append(conns, id)
		verifier, _ := oldRing.Seal([]byte("verifier"), tokenset.VerifierAAD(id))
		c := storage.Connection{ID: id, WorkspaceID: "w", UserID: "u", ProviderID: provID, ProviderName: "p",
			Scopes: []string{"s"}, ReturnURL: "https://app.example.com", Status: storage.StatusPending,
			PKCEVerifier: verifier, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := store.CreateConnection(ctx, c); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			continue // pending, verifier only
		}
		// One token from before the binding, one bound to its owner.
		sealed, version := []byte(nil), tokenset.AADVersion
		if i == 1 {
			sealed, _ = oldRing.Seal([]byte(`{"access_token":"at","token_type":"Bearer"}`), tokenset.LegacyAAD(id))
			version = tokenset.LegacyAADVersion
		} else {
			sealed, _ = tokenset.Seal(oldRing, c, tokenset.Set{AccessToken: "at", TokenType: "Bearer"})
		}
		if _, err := store.UpdateConnection(ctx, id, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
			c.Status = storage.StatusActive
			return c, storage.TokenChange{Put: &storage.Token{ConnectionID: id, Ciphertext: sealed, AADVersion: version,
				CreatedAt: now, UpdatedAt: now}}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}

	// A webhook endpoint mid-rotation: its current and previous secrets.
	hookSecret, _ := oldRing.Seal([]byte("whsec_current"), endpoint.SecretAAD("ep_1"))
	hookPrev, _ := oldRing.Seal([]byte("whsec_previous"), endpoint.SecretAAD("ep_1"))
	if err := store.CreateWebhookEndpoint(ctx, storage.WebhookEndpoint{ID: "ep_1", Owner: "agent-a", URL: "https://h.example/x",
		Secret: hookSecret, PreviousSecret: hookPrev, PreviousSecretUntil: now.Add(time.Hour), Enabled: true,
		CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}

	rotating := ring(t, k2, k1)
	if n, err := rotate.Usage(ctx, store, rotating); err != nil || n != 9 {
		t.Fatalf("before: %d on old keys (%v), want 9 (2 client secrets, 2 webhook secrets, 3 verifiers, 2 tokens)", n, err)
	}
	var batches int
	st, err := rotate.Keys(ctx, store, rotating, 2, func(rotate.Stats) { batches++ })
	if err != nil {
		t.Fatal(err)
	}
	if st.Providers != 2 || st.Webhooks != 1 || st.Connections != 3 || st.Resealed != 9 || st.Rebound != 1 || st.OnOldKeys != 0 || batches != 2 {
		t.Fatalf("stats %+v after %d batches", st, batches)
	}

	newOnly := ring(t, k2)
	p, err := store.GetProvider(ctx, provID)
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := newOnly.Open(p.ClientSecret, binding.LegacySecretAAD(provID)); err != nil || string(plain) != "client-secret" {
		t.Fatalf("legacy client secret after rotation: %q, %v", plain, err)
	}
	q, err := store.GetProvider(ctx, boundID)
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := newOnly.Open(q.ClientSecret, aad); err != nil || string(plain) != "bound-secret" || q.SecretAADVersion != binding.Version {
		t.Fatalf("bound client secret after rotation: %q, %v (version %d)", plain, err, q.SecretAADVersion)
	}
	ep, err := store.GetWebhookEndpoint(ctx, "ep_1")
	if err != nil {
		t.Fatal(err)
	}
	for ct, want := range map[*[]byte]string{&ep.Secret: "whsec_current", &ep.PreviousSecret: "whsec_previous"} {
		if plain, err := newOnly.Open(*ct, endpoint.SecretAAD("ep_1")); err != nil || string(plain) != want {
			t.Fatalf("webhook secret after rotation: %q, %v", plain, err)
		}
	}
	for i, id := range conns {
		c, _ := store.GetConnection(ctx, id)
		if _, err := newOnly.Open(c.PKCEVerifier, tokenset.VerifierAAD(id)); err != nil {
			t.Fatalf("verifier %d: %v", i, err)
		}
		if i == 0 {
			continue
		}
		tok, _ := store.GetToken(ctx, id)
		if tok.AADVersion != tokenset.AADVersion {
			t.Fatalf("token %d: AAD version %d after rotation, want %d", i, tok.AADVersion, tokenset.AADVersion)
		}
		if set, err := tokenset.Open(newOnly, c, tok); err != nil || set.AccessToken != "at" {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	again, err := rotate.Keys(ctx, store, rotating, 2, nil)
	if err != nil || again.Resealed != 0 || again.Rebound != 0 {
		t.Fatalf("second pass: %+v, %v", again, err)
	}
}

// failingReads is a store whose connection reads fail as during an outage.
type failingReads struct{ storage.Storage }

func (failingReads) GetConnectionToken(context.Context, string) (storage.Connection, *storage.Token, error) {
	return storage.Connection{}, nil, storage.ErrUnavailable
}

// The count operators trust before removing an old key fails rather than
// under-count when rows cannot be read.
func TestUsageFailsWhenRowsCannotBeRead(t *testing.T) {
	ctx := context.Background()
	store, err := database.Open(ctx, "sqlite:"+t.TempDir()+"/r.db", database.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	k1 := key(t, 1)
	provID, id := uuid.NewString(), uuid.NewString()
	now := time.Now().UTC()
	if err := store.CreateProvider(ctx, storage.Provider{ID: provID, Name: "p", Config: []byte(`{}`), CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	verifier, _ := ring(t, k1).Seal([]byte("verifier"), tokenset.VerifierAAD(id))
	if err := store.CreateConnection(ctx, storage.Connection{ID: id, WorkspaceID: "w", ProviderID: provID, ProviderName: "p",
		Status: storage.StatusPending, PKCEVerifier: verifier, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	newRing := ring(t, key(t, 2), k1)
	if n, err := rotate.Usage(ctx, store, newRing); err != nil || n != 1 {
		t.Fatalf("usage: %d %v, want 1", n, err)
	}
	if n, err := rotate.Usage(ctx, failingReads{store}, newRing); err == nil {
		t.Fatalf("usage with unreadable rows: %d, no error", n)
	}
}
