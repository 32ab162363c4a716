package registry_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/dromos-dev/dromos/internal/binding"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/storage"
)

// Someone who can write to the database but has no encryption key edits a
// provider's endpoint configuration to send the client secret (and every
// refresh token) to a host of theirs. The secret is bound to that
// configuration: after the edit it no longer opens, so the broker sends it
// nowhere.
func TestDatabaseEditOfProviderLeavesTheSecretSealed(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	st, body := f.do(t, "POST", "/providers", map[string]any{"profile": staticProfile("acme")})
	if st != http.StatusCreated {
		t.Fatalf("create: %d %v", st, body)
	}
	id := body["id"].(string)
	p, err := f.reg.Lookup(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	if sec, err := f.reg.ClientSecret(p); err != nil || sec.Reveal() != "the-client-secret" {
		t.Fatalf("client secret before the edit: %v", err)
	}
	orig := p.Row

	edits := map[string]func(r *storage.Provider){
		"token_url": func(r *storage.Provider) {
			r.Config = []byte(strings.Replace(string(r.Config), "https://idp.example/token", "https://attacker.example/token", 1))
		},
		"issuer and discovery": func(r *storage.Provider) {
			var m map[string]any
			json.Unmarshal(r.Config, &m)
			m["issuer"], m["enable_discovery"] = "https://attacker.example", true
			r.Config, _ = json.Marshal(m)
		},
		"client_id": func(r *storage.Provider) {
			r.Config = []byte(strings.Replace(string(r.Config), `"client_id":"cid"`, `"client_id":"other"`, 1))
		},
		"auth method": func(r *storage.Provider) {
			var m map[string]any
			json.Unmarshal(r.Config, &m)
			m["token_endpoint_auth_method"] = provider.AuthPost
			r.Config, _ = json.Marshal(m)
		},
		"confirmed endpoints": func(r *storage.Provider) {
			r.Endpoints = []byte(`{"token_endpoint":"https://attacker.example/token"}`)
		},
		"relabelled as legacy": func(r *storage.Provider) { r.SecretAADVersion = binding.LegacyVersion },
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			if _, err := f.store.UpdateProvider(ctx, id, func(r storage.Provider) (storage.Provider, error) {
				edit(&r)
				return r, nil
			}); err != nil {
				t.Fatal(err)
			}
			p, err := f.reg.Lookup(ctx, id, "")
			if err != nil {
				t.Fatal(err)
			}
			if sec, err := f.reg.ClientSecret(p); err == nil {
				t.Fatalf("the client secret still opens after the edit (%d bytes)", len(sec.Reveal()))
			}
			// Put the row back as it was: the secret opens again.
			if _, err := f.store.UpdateProvider(ctx, id, func(storage.Provider) (storage.Provider, error) { return orig, nil }); err != nil {
				t.Fatal(err)
			}
			p, _ = f.reg.Lookup(ctx, id, "")
			if _, err := f.reg.ClientSecret(p); err != nil {
				t.Fatalf("restored row: %v", err)
			}
		})
	}
}

// A discovery refresh that moves the token, revocation or userinfo
// endpoint to a host nobody confirmed is refused: the broker keeps the
// confirmed endpoints, logs and counts it, until an operator re-submits
// the provider with its secret.
func TestDiscoveryMoveIsRefusedUntilConfirmed(t *testing.T) {
	attacker := httptest.NewServer(http.NotFoundHandler())
	defer attacker.Close()
	var moved atomic.Bool
	var idp *httptest.Server
	idp = discoveryServer(t, func(string) string {
		if moved.Load() {
			return attacker.URL
		}
		return idp.URL
	})
	f := newFixture(t, false)
	ctx := context.Background()
	prof := map[string]any{"name": "oidc", "issuer": idp.URL + "/realm", "enable_discovery": true,
		"client_id": "cid", "client_secret": "the-client-secret", "scopes": []string{"openid"}}
	st, body := f.do(t, "POST", "/providers", map[string]any{"profile": prof})
	if st != http.StatusCreated {
		t.Fatalf("create: %d %v", st, body)
	}
	id := body["id"].(string)

	moved.Store(true)
	if _, err := f.disco.Fetch(ctx, idp.URL+"/realm"); err != nil {
		t.Fatal(err)
	}
	p, _ := f.reg.Lookup(ctx, id, "")
	ends, err := f.reg.Endpoints(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	for name, u := range map[string]string{"token": ends.Token, "revocation": ends.Revocation, "userinfo": ends.Userinfo} {
		if !strings.HasPrefix(u, idp.URL+"/") {
			t.Errorf("%s endpoint %q after discovery moved it; want the confirmed one on %s", name, u, idp.URL)
		}
	}
	for _, e := range []string{"token", "revocation", "userinfo"} {
		var m dto.Metric
		if err := f.reg.MovesRefused().WithLabelValues(e).Write(&m); err != nil {
			t.Fatal(err)
		}
		if n := m.GetCounter().GetValue(); n != 1 {
			t.Errorf("provider_endpoint_moves_refused_total{endpoint=%q} = %v, want 1", e, n)
		}
	}

	// An update without the secret cannot confirm the move.
	noSecret := map[string]any{}
	for k, v := range prof {
		if k != "client_secret" {
			noSecret[k] = v
		}
	}
	if st, env := f.do(t, "PUT", "/providers/"+id, map[string]any{"profile": noSecret}); st != http.StatusBadRequest {
		t.Fatalf("update without the secret after a discovery move: %d %v, want 400", st, env)
	}
	// The operator confirms by giving the secret again.
	if st, env := f.do(t, "PUT", "/providers/"+id, map[string]any{"profile": prof}); st != http.StatusOK {
		t.Fatalf("confirming update: %d %v", st, env)
	}
	p, _ = f.reg.Lookup(ctx, id, "")
	if ends, err = f.reg.Endpoints(ctx, p); err != nil || !strings.HasPrefix(ends.Token, attacker.URL+"/") {
		t.Fatalf("token endpoint after the operator confirmed: %q %v", ends.Token, err)
	}
	if sec, err := f.reg.ClientSecret(p); err != nil || sec.Reveal() != "the-client-secret" {
		t.Fatalf("client secret after confirming: %v", err)
	}
}

// Providers stored before the binding (secret sealed with the id only, no
// confirmed endpoints) keep working, and Rebind moves them to the binding.
func TestRebindUpgradesLegacyProviders(t *testing.T) {
	idp := discoveryServer(t, nil)
	ctx := context.Background()
	f := newFixture(t, false)
	legacy := func(id, name string, prof provider.Profile) {
		cfg, err := prof.StoredConfig()
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := f.ring.Seal([]byte("legacy-secret"), binding.LegacySecretAAD(id))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.store.CreateProvider(ctx, storage.Provider{ID: id, Name: name, Config: cfg, ClientSecret: sealed,
			SecretAADVersion: binding.LegacyVersion}); err != nil {
			t.Fatal(err)
		}
	}
	oidcID, staticID := "6f1f0c1e-0000-4000-8000-000000000001", "6f1f0c1e-0000-4000-8000-000000000002"
	legacy(oidcID, "oidc", provider.Profile{Name: "oidc", Issuer: idp.URL + "/realm", EnableDiscovery: true, ClientID: "cid"})
	legacy(staticID, "static", provider.Profile{Name: "static", AuthURL: "https://idp.example/a", TokenURL: "https://idp.example/t", ClientID: "cid"})

	for _, id := range []string{oidcID, staticID} {
		p, _ := f.reg.Lookup(ctx, id, "")
		if sec, err := f.reg.ClientSecret(p); err != nil || sec.Reveal() != "legacy-secret" {
			t.Fatalf("legacy provider %s before rebind: %v", id, err)
		}
	}
	left, err := f.reg.Rebind(ctx)
	if err != nil || left != 0 {
		t.Fatalf("Rebind: %d left, %v", left, err)
	}
	for _, id := range []string{oidcID, staticID} {
		p, _ := f.reg.Lookup(ctx, id, "")
		if p.Row.SecretAADVersion != binding.Version {
			t.Fatalf("provider %s: version %d after rebind", id, p.Row.SecretAADVersion)
		}
		if sec, err := f.reg.ClientSecret(p); err != nil || sec.Reveal() != "legacy-secret" {
			t.Fatalf("provider %s after rebind: %v", id, err)
		}
	}
	p, _ := f.reg.Lookup(ctx, oidcID, "")
	if !strings.Contains(string(p.Row.Endpoints), idp.URL+"/realm/token") {
		t.Fatalf("confirmed endpoints not recorded: %s", p.Row.Endpoints)
	}
	// Now bound: an edit of the row leaves the secret sealed.
	if _, err := f.store.UpdateProvider(ctx, oidcID, func(r storage.Provider) (storage.Provider, error) {
		r.Config = []byte(strings.Replace(string(r.Config), idp.URL+"/realm", idp.URL+"/evil", 1))
		return r, nil
	}); err != nil {
		t.Fatal(err)
	}
	p, _ = f.reg.Lookup(ctx, oidcID, "")
	if _, err := f.reg.ClientSecret(p); err == nil {
		t.Fatal("a rebound secret opened after its issuer was edited in the database")
	}
	if left, err := f.reg.Rebind(ctx); err != nil || left != 0 {
		t.Fatalf("second Rebind: %d left, %v", left, err)
	}
}
