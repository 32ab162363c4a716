package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dromos-dev/dromos/internal/config"
	"github.com/dromos-dev/dromos/internal/logging"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/storage/storagetest"
	"github.com/dromos-dev/dromos/internal/tokenset"
	"github.com/dromos-dev/dromos/internal/vault"
)

// TestReplicasShareTokenChanges runs two brokers wired as `dromos broker`
// wires them (token cache on, TOKEN_CACHE_STALENESS=1s) on one
// database, on both backends, and reads through replica A what replica B
// changes: a refresh and a deletion made on B are served by A no later
// than the bound, and a deletion made on A is seen by A at once.
func TestReplicasShareTokenChanges(t *testing.T) {
	const bound = time.Second
	for name, dbURL := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "dromos.db") },
		"postgres": func(t *testing.T) string { return storagetest.PostgresURL(t) },
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cfg, err := config.LoadBroker(config.Env{
				"DATABASE_URL": dbURL(t), "ENCRYPTION_KEY": mustKey(t), "STATE_KEY": mustKey(t),
				"TOKEN_CACHE_STALENESS": bound.String(),
			})
			if err != nil {
				t.Fatal(err)
			}
			replica := func() (*httptest.Server, storage.Storage) {
				svc, store, err := buildBroker(ctx, cfg, logging.Discard(), newRegistry(), nil)
				if err != nil {
					t.Fatal(err)
				}
				srv := httptest.NewServer(svc.Handler())
				t.Cleanup(func() { srv.Close(); svc.Close(); store.Close() })
				return srv, store
			}
			a, _ := replica()
			b, storeB := replica()
			ring, err := vault.NewKeyring(cfg.EncryptionKeys[0], cfg.EncryptionKeys[1:]...)
			if err != nil {
				t.Fatal(err)
			}
			// put stores an access token for id through B's store, as B's
			// refresh would.
			put := func(id, access string) {
				t.Helper()
				now := time.Now().UTC().Truncate(time.Second)
				_, err := storeB.UpdateConnection(ctx, id, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
					set := tokenset.Set{AccessToken: access, TokenType: "Bearer", Expiry: now.Add(time.Hour),
						ExpirySource: tokenset.ExpiryFromExpiresIn, ObtainedAt: now}
					ct, err := tokenset.Seal(ring, c, set)
					if err != nil {
						return c, storage.TokenChange{}, err
					}
					c.Status = storage.StatusActive
					return c, storage.TokenChange{Put: &storage.Token{ConnectionID: id, Ciphertext: ct, AADVersion: tokenset.AADVersion,
						ExpiresAt: set.Expiry, ExpirySource: set.ExpirySource, CreatedAt: now, UpdatedAt: now}}, nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			connect := func(access string) string {
				t.Helper()
				id := uuid.NewString()
				now := time.Now().UTC()
				if err := storeB.CreateConnection(ctx, storage.Connection{ID: id, ProviderID: "p1", ProviderName: "demo",
					Status: storage.StatusPending, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
				put(id, access)
				return id
			}
			// read answers the status and access token of GET
			// /connections/{id}/token on srv.
			read := func(srv *httptest.Server, id string) (int, string) {
				t.Helper()
				resp, err := http.Get(srv.URL + "/connections/" + id + "/token")
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var body struct {
					AccessToken string `json:"access_token"`
				}
				raw, _ := io.ReadAll(resp.Body)
				if resp.StatusCode == http.StatusOK {
					if err := json.Unmarshal(raw, &body); err != nil {
						t.Fatalf("%s: %v", raw, err)
					}
				}
				return resp.StatusCode, body.AccessToken
			}
			del := func(srv *httptest.Server, id string) {
				t.Helper()
				req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, srv.URL+"/connections/"+id, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					t.Fatalf("DELETE: %d", resp.StatusCode)
				}
			}
			want := func(srv *httptest.Server, id string, status int, access string) {
				t.Helper()
				if st, got := read(srv, id); st != status || got != access {
					t.Fatalf("read %s: %d %q, want %d %q", id, st, got, status, access)
				}
			}

			id := connect("at-1")
			want(a, id, http.StatusOK, "at-1")
			want(a, id, http.StatusOK, "at-1") // from A's cache
			if n := counter(t, a, `token_cache_reads_total{result="hit"}`); n != 1 {
				t.Fatalf("token_cache_reads_total{result=\"hit\"} = %v on A's /metrics, want 1", n)
			}
			put(id, "at-2") // a refresh on B
			time.Sleep(bound + 10*time.Millisecond)
			want(a, id, http.StatusOK, "at-2")

			del(b, id) // a deletion on B
			want(b, id, http.StatusNotFound, "")
			time.Sleep(bound + 10*time.Millisecond)
			want(a, id, http.StatusNotFound, "")

			own := connect("at-own")
			want(a, own, http.StatusOK, "at-own")
			del(a, own) // a deletion on A itself: no window at all
			want(a, own, http.StatusNotFound, "")

		})
	}
}

// counter reads one sample off srv's /metrics; -1 when absent.
func counter(t *testing.T, srv *httptest.Server, sample string) float64 {
	t.Helper()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(raw), "\n") {
		var v float64
		if n, _ := fmt.Sscanf(line, sample+" %g", &v); n == 1 {
			return v
		}
	}
	return -1
}
