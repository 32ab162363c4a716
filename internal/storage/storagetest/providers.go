package storagetest

import (
	"slices"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

func newProvider(id, name string, aliases ...string) storage.Provider {
	return storage.Provider{
		ID:           id,
		Name:         name,
		Aliases:      aliases,
		Config:       []byte(`{"issuer":"https://` + name + `.example.com","scopes":["openid"]}`),
		ClientSecret: []byte{0x00, 0xff, 0x10, 's', 'e', 'c'},
		// Round-tripped as given: the registry's binding of the secret.
		SecretAADVersion: 2,
		Endpoints:        []byte(`{"token":"https://` + name + `.example.com/token"}`),
		CreatedAt:        baseTime(),
		UpdatedAt:        baseTime().Add(time.Second),
	}
}

func createProvider(t *testing.T, s storage.Storage, p storage.Provider) {
	t.Helper()
	must(t, "CreateProvider "+p.ID, s.CreateProvider(t.Context(), p))
}

func runProviders(t *testing.T, open func(t *testing.T) storage.Storage) {
	t.Run("CreateGetNormalizesNames", func(t *testing.T) {
		s := open(t)
		in := newProvider("p1", "Google", "Gmail", "G-Suite", "gmail", "GOOGLE", "")
		createProvider(t, s, in)
		got, err := s.GetProvider(t.Context(), "p1")
		must(t, "GetProvider", err)
		want := in
		want.Name = "google"
		want.Aliases = []string{"g-suite", "gmail"}
		checkEqual(t, "provider", got, want)
	})

	t.Run("GetProviderByName", func(t *testing.T) {
		s := open(t)
		createProvider(t, s, newProvider("p1", "google", "gmail", "workspace"))
		createProvider(t, s, newProvider("p2", "github"))
		for _, tc := range []struct {
			name   string
			lookup string
			wantID string // "" means ErrNotFound
		}{
			{"canonical", "google", "p1"},
			{"canonical upper case", "GOOGLE", "p1"},
			{"alias", "gmail", "p1"},
			{"alias mixed case", "WorkSpace", "p1"},
			{"other provider", "GitHub", "p2"},
			{"unknown", "slack", ""},
			{"empty", "", ""},
			{"prefix only", "goog", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.GetProviderByName(t.Context(), tc.lookup)
				if tc.wantID == "" {
					wantErr(t, "GetProviderByName", err, storage.ErrNotFound)
					return
				}
				must(t, "GetProviderByName", err)
				if got.ID != tc.wantID {
					t.Fatalf("GetProviderByName(%q) = %q, want %q", tc.lookup, got.ID, tc.wantID)
				}
			})
		}
	})

	t.Run("GetProviderNotFound", func(t *testing.T) {
		s := open(t)
		_, err := s.GetProvider(t.Context(), "nope")
		wantErr(t, "GetProvider", err, storage.ErrNotFound)
	})

	t.Run("CreateConflicts", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			p    storage.Provider
		}{
			{"same id", newProvider("p1", "other")},
			{"same name", newProvider("p2", "google")},
			{"same name other case", newProvider("p2", "Google")},
			{"alias equals other name", newProvider("p2", "other", "fresh", "GOOGLE")},
			{"alias equals other alias", newProvider("p2", "other", "fresh", "gmail")},
			{"name equals other alias", newProvider("p2", "Gmail", "fresh")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				existing := newProvider("p1", "google", "gmail")
				createProvider(t, s, existing)
				err := s.CreateProvider(t.Context(), tc.p)
				wantErr(t, "CreateProvider", err, storage.ErrAlreadyExists)
				// Nothing of the refused provider may remain.
				for _, name := range []string{"other", "fresh"} {
					if _, err := s.GetProviderByName(t.Context(), name); err == nil {
						t.Errorf("name %q of the refused provider resolves", name)
					}
				}
				if tc.p.ID != "p1" {
					_, err = s.GetProvider(t.Context(), tc.p.ID)
					wantErr(t, "GetProvider of refused provider", err, storage.ErrNotFound)
				}
				got, err := s.GetProvider(t.Context(), "p1")
				must(t, "GetProvider p1", err)
				checkEqual(t, "existing provider", got, existing)
			})
		}
	})

	t.Run("ListProvidersOrderedByName", func(t *testing.T) {
		s := open(t)
		ps, err := s.ListProviders(t.Context())
		must(t, "ListProviders (empty)", err)
		if len(ps) != 0 {
			t.Fatalf("empty store lists %d providers", len(ps))
		}
		createProvider(t, s, newProvider("p1", "zeta", "z"))
		createProvider(t, s, newProvider("p2", "alpha"))
		createProvider(t, s, newProvider("p3", "Mid", "m2", "m1"))
		ps, err = s.ListProviders(t.Context())
		must(t, "ListProviders", err)
		var names []string
		for _, p := range ps {
			names = append(names, p.Name)
		}
		if want := []string{"alpha", "mid", "zeta"}; !slices.Equal(names, want) {
			t.Fatalf("ListProviders names = %q, want %q", names, want)
		}
		if !slices.Equal(ps[1].Aliases, []string{"m1", "m2"}) || ps[0].Aliases != nil || !slices.Equal(ps[2].Aliases, []string{"z"}) {
			t.Fatalf("ListProviders aliases = %q, %q, %q", ps[0].Aliases, ps[1].Aliases, ps[2].Aliases)
		}
	})

	t.Run("UpdateProviderReplacesAliases", func(t *testing.T) {
		s := open(t)
		orig := newProvider("p1", "google", "gmail", "gsuite")
		createProvider(t, s, orig)
		var seen storage.Provider
		got, err := s.UpdateProvider(t.Context(), "p1", func(p storage.Provider) (storage.Provider, error) {
			seen = p
			p.ID = "changed"                          // must be ignored
			p.CreatedAt = baseTime().AddDate(1, 0, 0) // must be ignored
			p.Name = "Google-Renamed"
			p.Aliases = []string{"Workspace", "gmail"}
			p.Config = []byte(`{"v":2}`)
			p.ClientSecret = nil
			p.UpdatedAt = baseTime().Add(time.Hour)
			return p, nil
		})
		must(t, "UpdateProvider", err)
		checkEqual(t, "provider seen by fn", seen, orig)
		want := orig
		want.Name = "google-renamed"
		want.Aliases = []string{"gmail", "workspace"}
		want.Config = []byte(`{"v":2}`)
		want.ClientSecret = nil
		want.UpdatedAt = baseTime().Add(time.Hour)
		checkEqual(t, "UpdateProvider result", got, want)
		stored, err := s.GetProvider(t.Context(), "p1")
		must(t, "GetProvider", err)
		checkEqual(t, "stored provider", stored, want)
		for _, tc := range []struct {
			name  string
			found bool
		}{{"google", false}, {"gsuite", false}, {"google-renamed", true}, {"gmail", true}, {"workspace", true}} {
			_, err := s.GetProviderByName(t.Context(), tc.name)
			if tc.found && err != nil {
				t.Errorf("GetProviderByName(%q) after update: %v", tc.name, err)
			}
			if !tc.found {
				wantErr(t, "GetProviderByName("+tc.name+") after update", err, storage.ErrNotFound)
			}
		}
		// The dropped alias is free again.
		createProvider(t, s, newProvider("p2", "gsuite"))
	})

	t.Run("UpdateProviderSwapsNameAndAlias", func(t *testing.T) {
		s := open(t)
		createProvider(t, s, newProvider("p1", "a", "b"))
		got, err := s.UpdateProvider(t.Context(), "p1", func(p storage.Provider) (storage.Provider, error) {
			p.Name, p.Aliases = "b", []string{"a"}
			return p, nil
		})
		must(t, "UpdateProvider", err)
		if got.Name != "b" || !slices.Equal(got.Aliases, []string{"a"}) {
			t.Fatalf("after swap: name %q aliases %q", got.Name, got.Aliases)
		}
	})

	t.Run("UpdateProviderConflicts", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			rename  string
			aliases []string
		}{
			{"alias equals other name", "github", []string{"GOOGLE"}},
			{"alias equals other alias", "github", []string{"gmail"}},
			{"name equals other name", "google", nil},
			{"name equals other alias", "Gmail", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				createProvider(t, s, newProvider("p1", "google", "gmail"))
				orig := newProvider("p2", "github", "gh")
				createProvider(t, s, orig)
				_, err := s.UpdateProvider(t.Context(), "p2", func(p storage.Provider) (storage.Provider, error) {
					p.Name, p.Aliases = tc.rename, tc.aliases
					p.Config = []byte(`{"changed":true}`)
					return p, nil
				})
				wantErr(t, "UpdateProvider", err, storage.ErrAlreadyExists)
				got, err := s.GetProvider(t.Context(), "p2")
				must(t, "GetProvider", err)
				checkEqual(t, "provider after refused update", got, orig)
				byAlias, err := s.GetProviderByName(t.Context(), "gh")
				must(t, "GetProviderByName(gh)", err)
				if byAlias.ID != "p2" {
					t.Fatalf("alias gh resolves to %q", byAlias.ID)
				}
			})
		}
	})

	t.Run("UpdateProviderClosureError", func(t *testing.T) {
		s := open(t)
		orig := newProvider("p1", "google", "gmail")
		createProvider(t, s, orig)
		_, err := s.UpdateProvider(t.Context(), "p1", func(p storage.Provider) (storage.Provider, error) {
			p.Name = "changed"
			return p, errBoom
		})
		wantErr(t, "UpdateProvider", err, errBoom)
		got, err := s.GetProvider(t.Context(), "p1")
		must(t, "GetProvider", err)
		checkEqual(t, "provider after failed closure", got, orig)
	})

	t.Run("UpdateProviderNotFound", func(t *testing.T) {
		s := open(t)
		called := false
		_, err := s.UpdateProvider(t.Context(), "nope", func(p storage.Provider) (storage.Provider, error) {
			called = true
			return p, nil
		})
		wantErr(t, "UpdateProvider", err, storage.ErrNotFound)
		if called {
			t.Fatal("fn called for a missing provider")
		}
	})

	t.Run("DeleteProvider", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		createProvider(t, s, newProvider("p1", "google", "gmail"))
		createProvider(t, s, newProvider("p2", "github"))
		c := newConnection("c1")
		c.ProviderID = "p1"
		must(t, "CreateConnection", s.CreateConnection(ctx, c))

		must(t, "DeleteProvider", s.DeleteProvider(ctx, "p1"))
		_, err := s.GetProvider(ctx, "p1")
		wantErr(t, "GetProvider after delete", err, storage.ErrNotFound)
		for _, name := range []string{"google", "gmail"} {
			_, err = s.GetProviderByName(ctx, name)
			wantErr(t, "GetProviderByName("+name+") after delete", err, storage.ErrNotFound)
		}
		wantErr(t, "second DeleteProvider", s.DeleteProvider(ctx, "p1"), storage.ErrNotFound)
		if _, err := s.GetProvider(ctx, "p2"); err != nil {
			t.Fatalf("other provider gone: %v", err)
		}
		got, err := s.GetConnection(ctx, "c1")
		must(t, "GetConnection after provider delete", err)
		if got.ProviderID != "p1" {
			t.Fatalf("connection provider_id = %q, want the dangling p1", got.ProviderID)
		}
		// The names are free again.
		createProvider(t, s, newProvider("p3", "gmail", "google"))
	})

	t.Run("DeleteProviderNotFound", func(t *testing.T) {
		s := open(t)
		wantErr(t, "DeleteProvider", s.DeleteProvider(t.Context(), "nope"), storage.ErrNotFound)
	})

	t.Run("NilAndEmptyFields", func(t *testing.T) {
		s := open(t)
		for _, tc := range []struct {
			name string
			p    storage.Provider
		}{
			{"nil", storage.Provider{ID: "p-nil", Name: "nil"}},
			{"empty", storage.Provider{ID: "p-empty", Name: "empty", Aliases: []string{}, Config: []byte{}, ClientSecret: []byte{}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				createProvider(t, s, tc.p)
				got, err := s.GetProvider(t.Context(), tc.p.ID)
				must(t, "GetProvider", err)
				if got.Aliases != nil || got.Config != nil || got.ClientSecret != nil {
					t.Fatalf("want nil Aliases, Config, ClientSecret; got %#v, %#v, %#v", got.Aliases, got.Config, got.ClientSecret)
				}
				if !got.CreatedAt.IsZero() || !got.UpdatedAt.IsZero() {
					t.Fatalf("zero times came back as %v, %v", got.CreatedAt, got.UpdatedAt)
				}
			})
		}
	})
}
