package stepup_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/stepup"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/storage/sqlite"
)

func TestUnion(t *testing.T) {
	tests := []struct {
		name           string
		current, added []string
		want           []string
	}{
		{"adds in order", []string{"openid", "email"}, []string{"files.read", "files.write"}, []string{"openid", "email", "files.read", "files.write"}},
		{"keeps what is there", []string{"openid", "email"}, []string{"email", "openid"}, []string{"openid", "email"}},
		{"drops repeats", nil, []string{"a", "a", "b"}, []string{"a", "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cur := slices.Clone(tc.current)
			if got := stepup.Union(cur, tc.added); !slices.Equal(got, tc.want) {
				t.Fatalf("Union = %v, want %v", got, tc.want)
			}
			if !slices.Equal(cur, tc.current) {
				t.Fatal("Union changed its input")
			}
		})
	}
}

var t0 = time.Date(2030, 3, 4, 5, 6, 7, 0, time.UTC)

func openStore(t *testing.T) storage.Storage {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "d.db"), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func activeConn(t *testing.T, s storage.Storage) storage.Connection {
	c := storage.Connection{ID: "c1", WorkspaceID: "ws", ClientName: "agent", ProviderID: "p", Scopes: []string{"openid"},
		Status: storage.StatusActive, CreatedAt: t0, UpdatedAt: t0, ExpiresAt: t0}
	if err := s.CreateConnection(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	c.Version = 1
	return c
}

func attempt(id string, at time.Time) storage.StepUp {
	return storage.StepUp{ID: id, ConnectionID: "c1", Scopes: []string{"openid", "x"}, Added: []string{"x"},
		Status: storage.StepUpPending, CreatedAt: at, UpdatedAt: at, ExpiresAt: at.Add(10 * time.Minute)}
}

func TestBeginOwnershipAndLimit(t *testing.T) {
	s := openStore(t)
	c := activeConn(t, s)
	m := stepup.New(s, stepup.Limits{Max: 2, Window: 10 * time.Minute})
	owner := stepup.Owner{WorkspaceID: "ws", ClientName: "agent"}
	ctx := context.Background()

	other := owner
	other.ClientName = "intruder"
	if he, ok := httpapi.As(m.Begin(ctx, other, c, attempt("a0", t0))); !ok || he.Status != http.StatusNotFound {
		t.Fatalf("another client's step-up: %v, want 404", he)
	}
	for i, at := range []time.Time{t0, t0.Add(time.Minute)} {
		if err := m.Begin(ctx, owner, c, attempt(string(rune('a'+i)), at)); err != nil {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	err := m.Begin(ctx, owner, c, attempt("c", t0.Add(2*time.Minute)))
	he, ok := httpapi.As(err)
	if !ok || he.Status != http.StatusTooManyRequests || he.Code != stepup.CodeLimited || he.RetryAfter != 8*time.Minute {
		t.Fatalf("third attempt: %v (retry after %v), want 429 step_up_limited after 8m", err, he.RetryAfter)
	}
	if latest, _ := s.LatestStepUp(ctx, "c1"); latest.ID != "b" {
		t.Fatalf("latest attempt %q after a refused one, want b", latest.ID)
	}
	// The first attempt leaves the window ten minutes after it began.
	if err := m.Begin(ctx, owner, c, attempt("d", t0.Add(10*time.Minute+time.Second))); err != nil {
		t.Fatalf("attempt after the window: %v", err)
	}
	// A connection that changed since it was read is refused.
	seen := c
	seen.Scopes = []string{"openid", "stale"}
	if he, ok := httpapi.As(m.Begin(ctx, owner, seen, attempt("e", t0.Add(30*time.Minute)))); !ok || he.Code != "connection_changed" {
		t.Fatalf("stale connection: %v, want 409 connection_changed", he)
	}
}

func TestLatestReportsExpiry(t *testing.T) {
	s := openStore(t)
	c := activeConn(t, s)
	m := stepup.New(s, stepup.Limits{})
	ctx := context.Background()
	owner := stepup.Owner{WorkspaceID: "ws", ClientName: "agent"}
	if _, ok, err := m.Latest(ctx, "c1", t0); ok || err != nil {
		t.Fatalf("Latest without step-ups: %v %v", ok, err)
	}
	if err := m.Begin(ctx, owner, c, attempt("a", t0)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at           time.Time
		want, reason string
	}{
		{t0.Add(9 * time.Minute), "pending", ""},
		{t0.Add(10 * time.Minute), "failed", "expired"},
	} {
		r, ok, err := m.Latest(ctx, "c1", tc.at)
		if err != nil || !ok || r.Status != tc.want || r.Reason != tc.reason {
			t.Fatalf("at %v: %+v %v %v, want %s %s", tc.at, r, ok, err, tc.want, tc.reason)
		}
	}
	// A claimed attempt that fails leaves the connection untouched.
	su, _ := s.LatestStepUp(ctx, "c1")
	if _, err := m.Claim(ctx, su, "", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Claim(ctx, su, "", t0); !errors.Is(err, stepup.ErrNotPending) {
		t.Fatalf("second claim: %v, want ErrNotPending", err)
	}
	if err := m.Fail(ctx, su.ID, "exchange_failed", t0); err != nil {
		t.Fatal(err)
	}
	after, err := s.GetConnection(ctx, "c1")
	if err != nil || after.Version != c.Version || !slices.Equal(after.Scopes, c.Scopes) {
		t.Fatalf("connection after a failed step-up: %+v %v", after, err)
	}
	if r, _, _ := m.Latest(ctx, "c1", t0); r.Status != "failed" || r.Reason != "exchange_failed" {
		t.Fatalf("report %+v", r)
	}
}
