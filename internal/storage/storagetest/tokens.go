package storagetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

func newToken(connectionID, tag string) storage.Token {
	return storage.Token{
		ConnectionID: connectionID,
		// Bytes a text column would mangle: NUL, invalid UTF-8.
		Ciphertext:   append([]byte{0x00, 0xc3, 0x28, 0xff}, tag...),
		AADVersion:   2,
		ExpiresAt:    baseTime().Add(time.Hour),
		ExpirySource: "expires_in",
		CreatedAt:    baseTime(),
		UpdatedAt:    baseTime().Add(time.Second),
	}
}

// putToken stores tok through UpdateConnection, the only way to write one.
func putToken(t *testing.T, s storage.Storage, id string, tok storage.Token) storage.Connection {
	t.Helper()
	c, err := s.UpdateConnection(t.Context(), id, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		return c, storage.TokenChange{Put: &tok}, nil
	})
	must(t, "UpdateConnection put token", err)
	return c
}

func getToken(t *testing.T, s storage.Storage, id string) storage.Token {
	t.Helper()
	tok, err := s.GetToken(t.Context(), id)
	must(t, "GetToken "+id, err)
	return tok
}

func runTokens(t *testing.T, open func(t *testing.T) storage.Storage) {
	t.Run("GetConnectionTokenJoin", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		must(t, "CreateConnection", s.CreateConnection(ctx, newConnection("conn-join")))
		c, tok, err := s.GetConnectionToken(ctx, "conn-join")
		must(t, "GetConnectionToken", err)
		if tok != nil || c.ID != "conn-join" {
			t.Fatalf("without token: %+v %+v", c, tok)
		}
		want := newToken("conn-join", "join")
		_, err = s.UpdateConnection(ctx, "conn-join", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
			return c, storage.TokenChange{Put: &want}, nil
		})
		must(t, "UpdateConnection", err)
		c, tok, err = s.GetConnectionToken(ctx, "conn-join")
		must(t, "GetConnectionToken", err)
		plainC, _ := s.GetConnection(ctx, "conn-join")
		plainT, _ := s.GetToken(ctx, "conn-join")
		if tok == nil || string(tok.Ciphertext) != string(plainT.Ciphertext) || !tok.ExpiresAt.Equal(plainT.ExpiresAt) ||
			tok.ExpirySource != plainT.ExpirySource || !tok.UpdatedAt.Equal(plainT.UpdatedAt) || c.Version != plainC.Version ||
			!c.CreatedAt.Equal(plainC.CreatedAt) || c.Status != plainC.Status {
			t.Fatalf("join differs from the separate reads:\n%+v\n%+v", tok, plainT)
		}
		if _, _, err := s.GetConnectionToken(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("unknown id: %v", err)
		}
	})
	// ConnectionOwners names each existing connection's agent and
	// provider in one query, leaving out ids that name none.
	t.Run("ConnectionOwners", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		got, err := s.ConnectionOwners(ctx, nil)
		must(t, "ConnectionOwners of none", err)
		if len(got) != 0 {
			t.Fatalf("owners of no ids: %v", got)
		}
		a := newConnection("co-1")
		b := newConnection("co-2")
		b.ClientName, b.ProviderID = "agent-b", "prov-2"
		createConnection(t, s, a)
		createConnection(t, s, b)
		got, err = s.ConnectionOwners(ctx, []string{"co-1", "co-2", "co-missing", "co-1"})
		must(t, "ConnectionOwners", err)
		want := map[string]storage.ConnectionOwner{
			"co-1": {ClientName: a.ClientName, ProviderID: a.ProviderID},
			"co-2": {ClientName: "agent-b", ProviderID: "prov-2"},
		}
		if len(got) != len(want) || got["co-1"] != want["co-1"] || got["co-2"] != want["co-2"] {
			t.Fatalf("owners %v, want %v", got, want)
		}
		must(t, "DeleteConnection", s.DeleteConnection(ctx, "co-2"))
		got, err = s.ConnectionOwners(ctx, []string{"co-1", "co-2"})
		must(t, "ConnectionOwners after delete", err)
		if _, ok := got["co-2"]; ok || len(got) != 1 {
			t.Fatalf("owners after deleting co-2: %v", got)
		}
	})
	// ConnectionVersions is what a replica's token cache checks its rows
	// against: it must move with every change to the connection or its
	// token row (put, replace, delete, status change) and drop deleted
	// connections.
	t.Run("ConnectionVersions", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		got, err := s.ConnectionVersions(ctx, nil)
		must(t, "ConnectionVersions of none", err)
		if len(got) != 0 {
			t.Fatalf("versions of no ids: %v", got)
		}
		createConnection(t, s, newConnection("cv-1"))
		createConnection(t, s, newConnection("cv-2"))
		versions := func() map[string]int64 {
			t.Helper()
			v, err := s.ConnectionVersions(ctx, []string{"cv-1", "cv-2", "cv-missing", "cv-1"})
			must(t, "ConnectionVersions", err)
			return v
		}
		v0 := versions()
		if len(v0) != 2 || v0["cv-1"] != getConnection(t, s, "cv-1").Version || v0["cv-2"] != getConnection(t, s, "cv-2").Version {
			t.Fatalf("versions %v", v0)
		}
		steps := []struct {
			name string
			fn   func(storage.Connection, *storage.Token) (storage.Connection, storage.TokenChange, error)
		}{
			{"token put", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
				tok := newToken("cv-1", "first")
				return c, storage.TokenChange{Put: &tok}, nil
			}},
			{"token replaced (refresh, re-seal)", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
				tok := newToken("cv-1", "second")
				tok.AADVersion = 3
				return c, storage.TokenChange{Put: &tok}, nil
			}},
			{"status revoked", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
				c.Status = storage.StatusRevoked
				return c, storage.TokenChange{}, nil
			}},
			{"token deleted", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
				return c, storage.TokenChange{Delete: true}, nil
			}},
		}
		prev := v0["cv-1"]
		for _, st := range steps {
			_, err := s.UpdateConnection(ctx, "cv-1", st.fn)
			must(t, "UpdateConnection "+st.name, err)
			v := versions()
			if v["cv-1"] <= prev {
				t.Fatalf("%s: version %d, was %d", st.name, v["cv-1"], prev)
			}
			if v["cv-2"] != v0["cv-2"] {
				t.Fatalf("%s: the other connection's version moved: %d, was %d", st.name, v["cv-2"], v0["cv-2"])
			}
			prev = v["cv-1"]
		}
		must(t, "DeleteConnection", s.DeleteConnection(ctx, "cv-1"))
		if v := versions(); len(v) != 1 || v["cv-2"] != v0["cv-2"] {
			t.Fatalf("after deletion: %v", v)
		}
	})
	t.Run("PutReplaceDelete", func(t *testing.T) {
		s := open(t)
		createConnection(t, s, newConnection("c1"))

		first := newToken("c1", "first")
		if c := putToken(t, s, "c1", first); c.Version != 2 {
			t.Fatalf("Version after put = %d, want 2", c.Version)
		}
		checkEqual(t, "token after put", getToken(t, s, "c1"), first)

		second := newToken("", "second") // empty ConnectionID: the update's id is used
		second.ExpiresAt = time.Time{}
		second.ExpirySource = "unknown" // the upsert must replace it too
		second.UpdatedAt = baseTime().Add(time.Minute)
		var seen *storage.Token
		_, err := s.UpdateConnection(t.Context(), "c1", func(c storage.Connection, tok *storage.Token) (storage.Connection, storage.TokenChange, error) {
			seen = tok
			return c, storage.TokenChange{Put: &second}, nil
		})
		must(t, "UpdateConnection replace token", err)
		if seen == nil {
			t.Fatal("fn saw no token after one was put")
		}
		checkEqual(t, "token seen by fn", *seen, first)
		second.ConnectionID = "c1"
		checkEqual(t, "token after replace", getToken(t, s, "c1"), second)

		c, err := s.UpdateConnection(t.Context(), "c1", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
			c.Status = storage.StatusRevoked
			return c, storage.TokenChange{Delete: true}, nil
		})
		must(t, "UpdateConnection delete token", err)
		if c.Version != 4 || c.Status != storage.StatusRevoked {
			t.Fatalf("after delete: version %d status %q, want 4 revoked", c.Version, c.Status)
		}
		_, err = s.GetToken(t.Context(), "c1")
		wantErr(t, "GetToken after delete", err, storage.ErrNotFound)

		// Deleting when there is no token is not an error.
		_, err = s.UpdateConnection(t.Context(), "c1", func(c storage.Connection, tok *storage.Token) (storage.Connection, storage.TokenChange, error) {
			if tok != nil {
				t.Errorf("fn saw a token after delete")
			}
			return c, storage.TokenChange{Delete: true}, nil
		})
		must(t, "UpdateConnection delete missing token", err)
	})

	t.Run("ZeroChangeKeepsToken", func(t *testing.T) {
		s := open(t)
		createConnection(t, s, newConnection("c1"))
		tok := newToken("c1", "keep")
		putToken(t, s, "c1", tok)
		_, err := s.UpdateConnection(t.Context(), "c1", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
			c.LastErrorClass = "none"
			return c, storage.TokenChange{}, nil
		})
		must(t, "UpdateConnection", err)
		checkEqual(t, "token", getToken(t, s, "c1"), tok)
	})

	t.Run("ClosureErrorWritesNothing", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			change func() storage.TokenChange
		}{
			{"put", func() storage.TokenChange { t := newToken("c1", "replacement"); return storage.TokenChange{Put: &t} }},
			{"delete", func() storage.TokenChange { return storage.TokenChange{Delete: true} }},
			{"none", func() storage.TokenChange { return storage.TokenChange{} }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				createConnection(t, s, newConnection("c1"))
				tok := newToken("c1", "original")
				before := putToken(t, s, "c1", tok)
				_, err := s.UpdateConnection(t.Context(), "c1", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
					c.Status = storage.StatusActive
					c.Email = "changed@example.com"
					return c, tc.change(), errBoom
				})
				wantErr(t, "UpdateConnection", err, errBoom)
				checkEqual(t, "connection after failed closure", getConnection(t, s, "c1"), before)
				checkEqual(t, "token after failed closure", getToken(t, s, "c1"), tok)
			})
		}
	})

	t.Run("PutForOtherConnectionRefused", func(t *testing.T) {
		s := open(t)
		createConnection(t, s, newConnection("c1"))
		createConnection(t, s, newConnection("c2"))
		before := getConnection(t, s, "c1")
		other := newToken("c2", "wrong")
		_, err := s.UpdateConnection(t.Context(), "c1", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
			c.Status = storage.StatusActive
			return c, storage.TokenChange{Put: &other}, nil
		})
		if err == nil {
			t.Fatal("UpdateConnection accepted a token of another connection")
		}
		checkEqual(t, "connection after refused put", getConnection(t, s, "c1"), before)
		for _, id := range []string{"c1", "c2"} {
			_, err := s.GetToken(t.Context(), id)
			wantErr(t, "GetToken "+id, err, storage.ErrNotFound)
		}
	})

	t.Run("GetTokenNotFound", func(t *testing.T) {
		s := open(t)
		_, err := s.GetToken(t.Context(), "nope")
		wantErr(t, "GetToken of unknown connection", err, storage.ErrNotFound)
		createConnection(t, s, newConnection("c1"))
		_, err = s.GetToken(t.Context(), "c1")
		wantErr(t, "GetToken of connection without token", err, storage.ErrNotFound)
	})

	t.Run("ErrorsHoldNoCiphertext", func(t *testing.T) {
		s := open(t)
		createConnection(t, s, newConnection("c1"))
		secret := []byte("SECRET-CIPHERTEXT-MARKER")
		tok := storage.Token{ConnectionID: "c2", Ciphertext: secret}
		_, err := s.UpdateConnection(t.Context(), "c1", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
			return c, storage.TokenChange{Put: &tok}, nil
		})
		if err == nil {
			t.Fatal("UpdateConnection accepted a token of another connection")
		}
		if bytes.Contains([]byte(err.Error()), secret) {
			t.Fatalf("error message holds the ciphertext: %v", err)
		}
	})
}
