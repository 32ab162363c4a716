package revocation_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/revocation"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/storage/sqlite"
	"github.com/dromos-dev/dromos/internal/tokenset"
	"github.com/dromos-dev/dromos/internal/vault"
)

// fakeRevocationEndpoint is an RFC 7009 endpoint whose answers the test
// switches: it records every token it revoked.
type fakeRevocationEndpoint struct {
	srv     *httptest.Server
	down    atomic.Bool // answer 503
	noRT    atomic.Bool // answer unsupported_token_type for refresh tokens
	mu      sync.Mutex
	revoked []string // token_type_hint:token of each 200
	calls   atomic.Int32
}

func newEndpoint(t *testing.T) *fakeRevocationEndpoint {
	f := &fakeRevocationEndpoint{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		if f.down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		hint := r.PostForm.Get("token_type_hint")
		if hint == "refresh_token" && f.noRT.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"unsupported_token_type"}`))
			return
		}
		f.mu.Lock()
		f.revoked = append(f.revoked, hint+":"+r.PostForm.Get("token"))
		f.mu.Unlock()
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRevocationEndpoint) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.revoked...)
}

type fixture struct {
	store  storage.Storage
	ring   *vault.Keyring
	ep     *fakeRevocationEndpoint
	now    time.Time
	audits []storage.AuditEvent
	rv     *revocation.Revoker
}

var t0 = time.Date(2030, 3, 4, 5, 6, 7, 0, time.UTC)

func newFixture(t *testing.T) *fixture {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "d.db"), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ring, err := vault.NewKeyring(vault.Key{ID: 1, Secret: [vault.KeySize]byte{9, 8, 7}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: s, ring: ring, ep: newEndpoint(t), now: t0}
	resolve := func(_ context.Context, providerID string) (revocation.Target, error) {
		switch providerID {
		case "gone":
			return revocation.Target{}, revocation.ErrNoProvider
		case "no-endpoint":
			return revocation.Target{}, nil
		}
		return revocation.Target{URL: f.ep.srv.URL + "/revoke",
			Endpoint: exchange.Endpoint{TokenURL: f.ep.srv.URL + "/token", ClientID: "cid", AuthMethod: exchange.AuthPost}}, nil
	}
	f.rv, err = revocation.New(revocation.Options{RetryFor: time.Hour, MinBackoff: time.Minute, MaxBackoff: 10 * time.Minute},
		revocation.Deps{Store: s, Vault: ring, Client: exchange.New(exchange.Options{}), Resolve: resolve,
			Audit: func(_ context.Context, e storage.AuditEvent) { f.audits = append(f.audits, e) },
			Now:   func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// activeConnection stores a connection holding the given tokens.
func (f *fixture) activeConnection(t *testing.T, id, providerID string, set tokenset.Set) {
	t.Helper()
	c := storage.Connection{ID: id, WorkspaceID: "ws", UserID: "u1", ClientName: "agent", ProviderID: providerID,
		ProviderName: "prov", Status: storage.StatusActive, CreatedAt: t0, UpdatedAt: t0}
	if err := f.store.CreateConnection(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	sealed, err := tokenset.Seal(f.ring, c, set)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.store.UpdateConnection(t.Context(), id, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		return c, storage.TokenChange{Put: &storage.Token{ConnectionID: id, Ciphertext: sealed, AADVersion: tokenset.AADVersion,
			CreatedAt: t0, UpdatedAt: t0}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) pending(t *testing.T) int64 {
	t.Helper()
	n, err := f.store.CountRevocations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *fixture) runOnce(t *testing.T) int {
	t.Helper()
	n, err := f.rv.RunOnce(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A provider that is down when the connection is deleted gets the
// revocation later: the connection is gone at once, the grant is revoked
// exactly once after the provider recovers, and the end is audited.
func TestDeleteRetriesUntilTheProviderRecovers(t *testing.T) {
	f := newFixture(t)
	f.activeConnection(t, "c1", "p1", tokenset.Set{AccessToken: "at-1", RefreshToken: "rt-1"})
	f.ep.down.Store(true)

	out, err := f.rv.DeleteConnection(t.Context(), "c1")
	if err != nil || out != revocation.Pending {
		t.Fatalf("DeleteConnection = %q, %v; want pending", out, err)
	}
	if _, err := f.store.GetConnection(t.Context(), "c1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("connection still readable after delete: %v", err)
	}
	if f.pending(t) != 1 {
		t.Fatalf("no pending revocation kept after a 503")
	}
	// Not due yet: nothing is attempted.
	f.now = t0.Add(30 * time.Second)
	if n := f.runOnce(t); n != 0 {
		t.Fatalf("attempted %d revocations before the backoff ran out", n)
	}
	// Due but still down: one more failed attempt, backoff doubles.
	f.now = t0.Add(time.Minute)
	if n := f.runOnce(t); n != 1 {
		t.Fatalf("attempted %d revocations when one was due", n)
	}
	f.now = t0.Add(2*time.Minute + 30*time.Second)
	if n := f.runOnce(t); n != 0 {
		t.Fatalf("attempted %d revocations during the doubled backoff", n)
	}
	if len(f.ep.got()) != 0 || len(f.audits) != 0 {
		t.Fatalf("revoked %v, audited %v while the provider was down", f.ep.got(), f.audits)
	}
	f.ep.down.Store(false)
	f.now = t0.Add(3*time.Minute + time.Second)
	if n := f.runOnce(t); n != 1 {
		t.Fatalf("attempted %d revocations after recovery, want 1", n)
	}
	if got := f.ep.got(); len(got) != 1 || got[0] != "refresh_token:rt-1" {
		t.Fatalf("provider revoked %v, want the refresh token once", got)
	}
	if f.pending(t) != 0 {
		t.Fatal("revocation still pending after success")
	}
	if len(f.audits) != 1 || f.audits[0].Type != "revocation.succeeded" || f.audits[0].ConnectionID != "c1" || f.audits[0].Detail["attempts"] != "3" {
		t.Fatalf("audit = %+v, want one revocation.succeeded for c1 after 3 attempts", f.audits)
	}
	f.now = t0.Add(time.Hour)
	if n := f.runOnce(t); n != 0 || len(f.ep.got()) != 1 {
		t.Fatalf("a finished revocation was attempted again")
	}
}

func TestDeleteRevokesAtOnceWhenTheProviderAnswers(t *testing.T) {
	f := newFixture(t)
	f.activeConnection(t, "c1", "p1", tokenset.Set{AccessToken: "at-1", RefreshToken: "rt-1"})
	out, err := f.rv.DeleteConnection(t.Context(), "c1")
	if err != nil || out != revocation.Revoked {
		t.Fatalf("DeleteConnection = %q, %v; want yes", out, err)
	}
	if f.pending(t) != 0 || len(f.ep.got()) != 1 {
		t.Fatalf("pending %d, revoked %v; want nothing pending and one revocation", f.pending(t), f.ep.got())
	}
}

// unsupported_token_type for the refresh token: the access token is
// revoked instead.
func TestUnsupportedRefreshTokenRevokesTheAccessToken(t *testing.T) {
	f := newFixture(t)
	f.ep.noRT.Store(true)
	f.activeConnection(t, "c1", "p1", tokenset.Set{AccessToken: "at-1", RefreshToken: "rt-1"})
	out, err := f.rv.DeleteConnection(t.Context(), "c1")
	if err != nil || out != revocation.Revoked {
		t.Fatalf("DeleteConnection = %q, %v; want yes", out, err)
	}
	if got := f.ep.got(); len(got) != 1 || got[0] != "access_token:at-1" {
		t.Fatalf("provider revoked %v, want the access token", got)
	}
}

func TestGivesUpAfterTheRetryPeriod(t *testing.T) {
	f := newFixture(t)
	f.ep.down.Store(true)
	f.activeConnection(t, "c1", "p1", tokenset.Set{AccessToken: "at-1", RefreshToken: "rt-1"})
	if out, _ := f.rv.DeleteConnection(t.Context(), "c1"); out != revocation.Pending {
		t.Fatalf("DeleteConnection = %q, want pending", out)
	}
	attempts := 1
	for f.now = t0; f.pending(t) > 0 && f.now.Before(t0.Add(2*time.Hour)); f.now = f.now.Add(time.Minute) {
		attempts += f.runOnce(t)
	}
	if f.pending(t) != 0 {
		t.Fatal("still pending after the retry period")
	}
	// 1 h with backoff 1, 2, 4, 8 then 10 min: 1+1+1+1+1+5 attempts, the
	// last at the end of the period.
	if attempts < 6 || attempts > 12 {
		t.Errorf("%d attempts in the retry period, want a backoff's worth (6 to 12)", attempts)
	}
	if len(f.audits) != 1 || f.audits[0].Type != "revocation.failed" || f.audits[0].Detail["reason"] != "retry_period_over:transient" {
		t.Fatalf("audit = %+v, want one revocation.failed (retry period over)", f.audits)
	}
	for _, e := range f.audits {
		for k, v := range e.Detail {
			if v == "rt-1" || v == "at-1" || k == "token" {
				t.Fatalf("audit detail holds a token: %v", e.Detail)
			}
		}
	}
}

func TestNothingToRevoke(t *testing.T) {
	f := newFixture(t)
	f.activeConnection(t, "c1", "no-endpoint", tokenset.Set{AccessToken: "at-1"})
	if out, err := f.rv.DeleteConnection(t.Context(), "c1"); err != nil || out != revocation.NotRevoked {
		t.Fatalf("DeleteConnection without revocation endpoint = %q, %v; want no", out, err)
	}
	f.activeConnection(t, "c2", "gone", tokenset.Set{AccessToken: "at-2"})
	if out, err := f.rv.DeleteConnection(t.Context(), "c2"); err != nil || out != revocation.NotRevoked {
		t.Fatalf("DeleteConnection of a deleted provider = %q, %v; want no", out, err)
	}
	if _, err := f.rv.DeleteConnection(t.Context(), "c2"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	if f.pending(t) != 0 || f.ep.calls.Load() != 0 {
		t.Fatalf("pending %d, provider called %d times; want nothing", f.pending(t), f.ep.calls.Load())
	}
}

// Revoke (a grant that was never stored) keeps a failed revocation too.
func TestRevokeKeepsAFailedGrant(t *testing.T) {
	f := newFixture(t)
	f.ep.down.Store(true)
	out, err := f.rv.Revoke(t.Context(), "c9", "p1", revocation.Tokens{RefreshToken: "rt-9"})
	if err != nil || out != revocation.Pending {
		t.Fatalf("Revoke = %q, %v; want pending", out, err)
	}
	f.ep.down.Store(false)
	f.now = t0.Add(time.Minute)
	f.runOnce(t)
	if got := f.ep.got(); len(got) != 1 || got[0] != "refresh_token:rt-9" || f.pending(t) != 0 {
		t.Fatalf("revoked %v, pending %d; want rt-9 revoked and nothing pending", got, f.pending(t))
	}
}
