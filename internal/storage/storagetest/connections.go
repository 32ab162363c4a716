package storagetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

// newConnection fills every field, so a backend that drops a column fails.
func newConnection(id string) storage.Connection {
	t := baseTime()
	return storage.Connection{
		ID:           id,
		WorkspaceID:  "ws-1",
		UserID:       "user-1",
		ClientName:   "agent-a",
		ProviderID:   "prov-1",
		ProviderName: "google",
		Scopes:       []string{"openid", "email", "https://www.googleapis.com/auth/drive"},
		ReturnURL:    "https://app.example.com/done?x=1",
		// Values are JSON kept byte for byte: member order, duplicate
		// members, number spelling and escapes must survive (PostgreSQL's
		// jsonb would change every one of them).
		Metadata: map[string]json.RawMessage{"k": json.RawMessage(`"v"`), "ünïcode": json.RawMessage(`"✓ \u00e9 <b>"`),
			"empty": json.RawMessage(`""`), "num": json.RawMessage(`1.50e2`), "null": json.RawMessage(`null`),
			"obj": json.RawMessage(`{"zeta":[1,{"b":true,"a":null}],"alpha":"x","alpha":"y"}`)},
		Status:         storage.StatusPending,
		StatusReason:   "why-not",
		Nonce:          "nonce-123",
		PKCEVerifier:   []byte{0x00, 0x01, 0xfe, 0xff},
		Subject:        "sub-1",
		Email:          "user@example.com",
		Issuer:         "https://accounts.example.com",
		LastRefreshAt:  t.Add(-time.Hour),
		NextRefreshAt:  t.Add(time.Hour),
		LastErrorClass: "transient",
		// A lease has nanoseconds of its own, so a backend that rounds it
		// to whole seconds fails.
		RefreshLeaseUntil: t.Add(30*time.Second + 987654321),
		RefreshLeaseOwner: "broker-7f3a",
		CreatedAt:         t,
		UpdatedAt:         t.Add(time.Millisecond),
		ExpiresAt:         t.Add(10 * time.Minute),
		Version:           1,
		// Confirmation material has its own columns.
		ConfirmURL:            "https://app.example.com/confirm?y=2",
		ConfirmationHash:      "digest-of-a-confirmation-value",
		ConfirmationExpiresAt: t.Add(5*time.Minute + 123456789),
		ExpectedIdentity:      `{"email":"ü@example.com"}`,
	}
}

func createConnection(t *testing.T, s storage.Storage, c storage.Connection) {
	t.Helper()
	must(t, "CreateConnection "+c.ID, s.CreateConnection(t.Context(), c))
}

func getConnection(t *testing.T, s storage.Storage, id string) storage.Connection {
	t.Helper()
	c, err := s.GetConnection(t.Context(), id)
	must(t, "GetConnection "+id, err)
	return c
}

func runConnections(t *testing.T, open func(t *testing.T) storage.Storage) {
	t.Run("ListConnectionIDsPages", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		want := []string{"id-a", "id-b", "id-c", "id-d", "id-e"}
		for _, id := range []string{"id-c", "id-a", "id-e", "id-b", "id-d"} {
			must(t, "CreateConnection", s.CreateConnection(ctx, newConnection(id)))
		}
		var got []string
		after := ""
		for {
			page, err := s.ListConnectionIDs(ctx, after, 2)
			must(t, "ListConnectionIDs", err)
			if len(page) == 0 {
				break
			}
			if len(page) > 2 {
				t.Fatalf("page of %d, limit 2", len(page))
			}
			got = append(got, page...)
			after = page[len(page)-1]
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("paged ids %v, want %v", got, want)
		}
	})
	t.Run("CreateGetRoundTrip", func(t *testing.T) {
		s := open(t)
		in := newConnection("c1")
		in.Version = 7 // ignored: a new connection starts at 1
		createConnection(t, s, in)
		want := in
		want.Version = 1
		checkEqual(t, "connection", getConnection(t, s, "c1"), want)
	})

	t.Run("TimesUTCToTheMicrosecond", func(t *testing.T) {
		s := open(t)
		in := newConnection("c1")
		in.CreatedAt = time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.FixedZone("UTC-7", -7*60*60))
		in.LastRefreshAt = time.Time{}
		in.NextRefreshAt = time.Time{}
		in.RefreshLeaseUntil = time.Time{}
		createConnection(t, s, in)
		got := getConnection(t, s, "c1")
		if got.CreatedAt.Location() != time.UTC {
			t.Errorf("CreatedAt location %v, want UTC", got.CreatedAt.Location())
		}
		if d := got.CreatedAt.Sub(in.CreatedAt).Abs(); d >= time.Microsecond {
			t.Errorf("CreatedAt = %v, want %v to the microsecond (off by %v)", got.CreatedAt, in.CreatedAt, d)
		}
		if !got.LastRefreshAt.IsZero() || !got.NextRefreshAt.IsZero() || !got.RefreshLeaseUntil.IsZero() {
			t.Errorf("zero times came back as %v, %v, %v", got.LastRefreshAt, got.NextRefreshAt, got.RefreshLeaseUntil)
		}
	})

	t.Run("CreateDuplicate", func(t *testing.T) {
		s := open(t)
		orig := newConnection("c1")
		createConnection(t, s, orig)
		dup := newConnection("c1")
		dup.UserID = "intruder"
		wantErr(t, "CreateConnection duplicate", s.CreateConnection(t.Context(), dup), storage.ErrAlreadyExists)
		checkEqual(t, "original connection", getConnection(t, s, "c1"), orig)
	})

	t.Run("GetNotFound", func(t *testing.T) {
		s := open(t)
		_, err := s.GetConnection(t.Context(), "nope")
		wantErr(t, "GetConnection", err, storage.ErrNotFound)
	})

	t.Run("NilAndEmptyFields", func(t *testing.T) {
		s := open(t)
		for _, tc := range []struct {
			name string
			c    storage.Connection
		}{
			{"nil", storage.Connection{ID: "c-nil", Status: storage.StatusPending}},
			{"empty", storage.Connection{ID: "c-empty", Status: storage.StatusPending, Scopes: []string{}, Metadata: map[string]json.RawMessage{}, PKCEVerifier: []byte{}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				createConnection(t, s, tc.c)
				got := getConnection(t, s, tc.c.ID)
				if got.Scopes != nil || got.Metadata != nil || got.PKCEVerifier != nil {
					t.Fatalf("want nil Scopes, Metadata, PKCEVerifier; got %#v, %#v, %#v", got.Scopes, got.Metadata, got.PKCEVerifier)
				}
				// Emptying filled fields through an update reads back nil too.
				filled := newConnection(tc.c.ID + "-filled")
				createConnection(t, s, filled)
				got, err := s.UpdateConnection(t.Context(), filled.ID, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
					c.Scopes, c.Metadata, c.PKCEVerifier = tc.c.Scopes, tc.c.Metadata, tc.c.PKCEVerifier
					return c, storage.TokenChange{}, nil
				})
				must(t, "UpdateConnection", err)
				got = getConnection(t, s, filled.ID)
				if got.Scopes != nil || got.Metadata != nil || got.PKCEVerifier != nil {
					t.Fatalf("after update want nil Scopes, Metadata, PKCEVerifier; got %#v, %#v, %#v", got.Scopes, got.Metadata, got.PKCEVerifier)
				}
			})
		}
	})

	t.Run("List", func(t *testing.T) {
		s := open(t)
		type row struct {
			id, ws, user, client, provider string
			status                         storage.ConnectionStatus
		}
		// Created out of order; CreatedAt follows the id number.
		rows := []row{
			{"c3", "ws-b", "u1", "agent-a", "p1", storage.StatusActive},
			{"c1", "ws-a", "u1", "agent-a", "p1", storage.StatusPending},
			{"c2", "ws-a", "u2", "agent-b", "p2", storage.StatusActive},
			{"c5", "ws-a", "u1", "", "p2", storage.StatusFailed},
			{"c4", "ws-b", "u2", "agent-b", "p1", storage.StatusPending},
		}
		for _, r := range rows {
			c := newConnection(r.id)
			n := int(r.id[1] - '0')
			c.CreatedAt = baseTime().Add(time.Duration(n) * time.Minute)
			c.WorkspaceID, c.UserID, c.ClientName, c.ProviderID, c.Status = r.ws, r.user, r.client, r.provider, r.status
			createConnection(t, s, c)
		}
		for _, tc := range []struct {
			name string
			f    storage.ConnectionFilter
			want []string
		}{
			{"no filter", storage.ConnectionFilter{}, []string{"c1", "c2", "c3", "c4", "c5"}},
			{"workspace", storage.ConnectionFilter{WorkspaceID: "ws-a"}, []string{"c1", "c2", "c5"}},
			{"user", storage.ConnectionFilter{UserID: "u2"}, []string{"c2", "c4"}},
			{"client", storage.ConnectionFilter{ClientName: "agent-a"}, []string{"c1", "c3"}},
			{"provider", storage.ConnectionFilter{ProviderID: "p2"}, []string{"c2", "c5"}},
			{"status", storage.ConnectionFilter{Status: storage.StatusPending}, []string{"c1", "c4"}},
			{"any status", storage.ConnectionFilter{AnyStatus: []storage.ConnectionStatus{storage.StatusFailed, storage.StatusPending}}, []string{"c1", "c4", "c5"}},
			{"any status and client", storage.ConnectionFilter{ClientName: "agent-b", AnyStatus: []storage.ConnectionStatus{storage.StatusActive, storage.StatusFailed}}, []string{"c2"}},
			{"combined", storage.ConnectionFilter{WorkspaceID: "ws-a", UserID: "u1", ProviderID: "p1"}, []string{"c1"}},
			{"no match", storage.ConnectionFilter{WorkspaceID: "ws-a", Status: storage.StatusRevoked}, nil},
			{"limit", storage.ConnectionFilter{Limit: 2}, []string{"c1", "c2"}},
			{"limit with filter", storage.ConnectionFilter{WorkspaceID: "ws-b", Limit: 1}, []string{"c3"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cs, err := s.ListConnections(t.Context(), tc.f)
				must(t, "ListConnections", err)
				var ids []string
				for _, c := range cs {
					ids = append(ids, c.ID)
				}
				if !slices.Equal(ids, tc.want) {
					t.Fatalf("ListConnections(%+v) = %q, want %q", tc.f, ids, tc.want)
				}
			})
		}
		cs, err := s.ListConnections(t.Context(), storage.ConnectionFilter{UserID: "u2", Status: storage.StatusActive})
		must(t, "ListConnections", err)
		if len(cs) != 1 {
			t.Fatalf("ListConnections returned %d rows, want 1", len(cs))
		}
		want := newConnection("c2")
		want.CreatedAt = baseTime().Add(2 * time.Minute)
		want.WorkspaceID, want.UserID, want.ClientName, want.ProviderID, want.Status = "ws-a", "u2", "agent-b", "p2", storage.StatusActive
		checkEqual(t, "listed connection", cs[0], want)
	})

	t.Run("ListByProviderNameAndCursor", func(t *testing.T) {
		s := open(t)
		// Two connections share a CreatedAt, so the cursor must fall back
		// on the id to place them.
		for i, name := range []string{"google", "slack", "google", "google", "slack"} {
			c := newConnection(fmt.Sprintf("k%d", i))
			c.ProviderName = name
			c.CreatedAt = baseTime().Add(time.Duration(min(i, 3)) * time.Minute)
			createConnection(t, s, c)
		}
		list := func(f storage.ConnectionFilter) []string {
			t.Helper()
			cs, err := s.ListConnections(t.Context(), f)
			must(t, "ListConnections", err)
			ids := []string{}
			for _, c := range cs {
				ids = append(ids, c.ID)
			}
			return ids
		}
		if got, want := list(storage.ConnectionFilter{ProviderName: "google"}), []string{"k0", "k2", "k3"}; !slices.Equal(got, want) {
			t.Fatalf("provider_name google = %q, want %q", got, want)
		}
		// Page through everything two at a time, each page starting after
		// the last row of the one before.
		var all []string
		var after *storage.ConnectionKey
		for range 10 {
			cs, err := s.ListConnections(t.Context(), storage.ConnectionFilter{After: after, Limit: 2})
			must(t, "ListConnections", err)
			if len(cs) == 0 {
				break
			}
			for _, c := range cs {
				all = append(all, c.ID)
			}
			last := cs[len(cs)-1]
			after = &storage.ConnectionKey{CreatedAt: last.CreatedAt, ID: last.ID}
		}
		if want := []string{"k0", "k1", "k2", "k3", "k4"}; !slices.Equal(all, want) {
			t.Fatalf("paged listing = %q, want %q", all, want)
		}
		after = &storage.ConnectionKey{CreatedAt: baseTime().Add(3 * time.Minute), ID: "k3"}
		if got, want := list(storage.ConnectionFilter{ProviderName: "slack", After: after}), []string{"k4"}; !slices.Equal(got, want) {
			t.Fatalf("slack after k3 = %q, want %q", got, want)
		}
	})

	t.Run("ListDefaultLimit", func(t *testing.T) {
		s := open(t)
		for i := range 101 {
			c := storage.Connection{ID: fmt.Sprintf("c%03d", i), Status: storage.StatusPending, CreatedAt: baseTime()}
			createConnection(t, s, c)
		}
		cs, err := s.ListConnections(t.Context(), storage.ConnectionFilter{})
		must(t, "ListConnections", err)
		if len(cs) != 100 {
			t.Fatalf("ListConnections without limit returned %d, want 100", len(cs))
		}
		// Equal CreatedAt: ordered by id.
		if cs[0].ID != "c000" || cs[99].ID != "c099" {
			t.Fatalf("first and last = %q, %q; want c000, c099", cs[0].ID, cs[99].ID)
		}
	})

	t.Run("Update", func(t *testing.T) {
		s := open(t)
		orig := newConnection("c1")
		createConnection(t, s, orig)
		var seen storage.Connection
		var seenToken *storage.Token
		got, err := s.UpdateConnection(t.Context(), "c1", func(c storage.Connection, tok *storage.Token) (storage.Connection, storage.TokenChange, error) {
			seen, seenToken = c, tok
			c.Status = storage.StatusExchanging
			c.PKCEVerifier = nil
			c.Scopes = []string{"openid"}
			c.Metadata = map[string]json.RawMessage{"new": json.RawMessage(`[1, 2]`)}
			c.UpdatedAt = baseTime().Add(time.Minute)
			c.NextRefreshAt = time.Time{}
			return c, storage.TokenChange{}, nil
		})
		must(t, "UpdateConnection", err)
		checkEqual(t, "connection seen by fn", seen, orig)
		if seenToken != nil {
			t.Fatalf("fn saw token %+v for a connection without one", seenToken.ConnectionID)
		}
		want := orig
		want.Status = storage.StatusExchanging
		want.PKCEVerifier = nil
		want.Scopes = []string{"openid"}
		want.Metadata = map[string]json.RawMessage{"new": json.RawMessage(`[1, 2]`)}
		want.UpdatedAt = baseTime().Add(time.Minute)
		want.NextRefreshAt = time.Time{}
		want.Version = 2
		checkEqual(t, "UpdateConnection result", got, want)
		checkEqual(t, "stored connection", getConnection(t, s, "c1"), want)
	})

	t.Run("UpdateKeepsIdentity", func(t *testing.T) {
		s := open(t)
		orig := newConnection("c1")
		createConnection(t, s, orig)
		got, err := s.UpdateConnection(t.Context(), "c1", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
			c.ID = "c2"
			c.CreatedAt = baseTime().AddDate(1, 0, 0)
			c.Version = 99
			return c, storage.TokenChange{}, nil
		})
		must(t, "UpdateConnection", err)
		want := orig
		want.Version = 2
		checkEqual(t, "UpdateConnection result", got, want)
		checkEqual(t, "stored connection", getConnection(t, s, "c1"), want)
		_, err = s.GetConnection(t.Context(), "c2")
		wantErr(t, "GetConnection of the id fn tried to set", err, storage.ErrNotFound)
	})

	t.Run("UpdateNotFound", func(t *testing.T) {
		s := open(t)
		called := false
		_, err := s.UpdateConnection(t.Context(), "nope", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
			called = true
			return c, storage.TokenChange{}, nil
		})
		wantErr(t, "UpdateConnection", err, storage.ErrNotFound)
		if called {
			t.Fatal("fn called for a missing connection")
		}
	})

	t.Run("DeleteConnection", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		createConnection(t, s, newConnection("c1"))
		createConnection(t, s, newConnection("c2"))
		putToken(t, s, "c1", newToken("c1", "first"))
		putToken(t, s, "c2", newToken("c2", "other"))
		must(t, "DeleteConnection", s.DeleteConnection(ctx, "c1"))
		_, err := s.GetConnection(ctx, "c1")
		wantErr(t, "GetConnection after delete", err, storage.ErrNotFound)
		_, err = s.GetToken(ctx, "c1")
		wantErr(t, "GetToken after delete", err, storage.ErrNotFound)
		wantErr(t, "second DeleteConnection", s.DeleteConnection(ctx, "c1"), storage.ErrNotFound)
		if _, err := s.GetToken(ctx, "c2"); err != nil {
			t.Fatalf("token of another connection gone: %v", err)
		}
		// A new connection with the old id does not inherit the old token.
		createConnection(t, s, newConnection("c1"))
		_, err = s.GetToken(ctx, "c1")
		wantErr(t, "GetToken of re-created connection", err, storage.ErrNotFound)
	})

	t.Run("DeleteNotFound", func(t *testing.T) {
		s := open(t)
		wantErr(t, "DeleteConnection", s.DeleteConnection(t.Context(), "nope"), storage.ErrNotFound)
	})
}
