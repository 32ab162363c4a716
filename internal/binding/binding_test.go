package binding_test

import (
	"bytes"
	"testing"

	"github.com/dromos-dev/dromos/internal/binding"
	"github.com/dromos-dev/dromos/internal/storage"
)

func TestSecretAADCoversEveryBoundField(t *testing.T) {
	base := storage.Provider{ID: "p1", SecretAADVersion: binding.Version,
		Config:    []byte(`{"name":"x","issuer":"https://idp.example","enable_discovery":true,"client_id":"cid","token_endpoint_auth_method":"auto"}`),
		Endpoints: []byte(`{"token_endpoint":"https://idp.example/token"}`)}
	want, err := binding.SecretAAD(base)
	if err != nil {
		t.Fatal(err)
	}
	// Fields that do not decide where the secret goes leave it alone.
	same := base
	same.Name, same.Config = "renamed", []byte(`{"name":"y","display_name":"Y","issuer":"https://idp.example","enable_discovery":true,"client_id":"cid","token_endpoint_auth_method":"auto","scopes":["a"]}`)
	if got, _ := binding.SecretAAD(same); !bytes.Equal(got, want) {
		t.Error("name, display name or scopes changed the binding")
	}
	for name, cfg := range map[string]string{
		"issuer":      `{"issuer":"https://idp.example/x","enable_discovery":true,"client_id":"cid","token_endpoint_auth_method":"auto"}`,
		"discovery":   `{"issuer":"https://idp.example","client_id":"cid","token_endpoint_auth_method":"auto"}`,
		"client_id":   `{"issuer":"https://idp.example","enable_discovery":true,"client_id":"cid2","token_endpoint_auth_method":"auto"}`,
		"auth method": `{"issuer":"https://idp.example","enable_discovery":true,"client_id":"cid","token_endpoint_auth_method":"client_secret_post"}`,
		"token_url":   `{"issuer":"https://idp.example","enable_discovery":true,"client_id":"cid","token_endpoint_auth_method":"auto","token_url":"https://e.example/t"}`,
		"jwks_url":    `{"issuer":"https://idp.example","enable_discovery":true,"client_id":"cid","token_endpoint_auth_method":"auto","jwks_url":"https://e.example/k"}`,
		// Moving bytes between adjacent fields is a different encoding.
		"shifted": `{"issuer":"https://idp.examplec","enable_discovery":true,"client_id":"id","token_endpoint_auth_method":"auto"}`,
	} {
		r := base
		r.Config = []byte(cfg)
		if got, err := binding.SecretAAD(r); err != nil || bytes.Equal(got, want) {
			t.Errorf("%s: binding unchanged (%v)", name, err)
		}
	}
	r := base
	r.Endpoints = []byte(`{"token_endpoint":"https://evil.example/token"}`)
	if got, _ := binding.SecretAAD(r); bytes.Equal(got, want) {
		t.Error("confirmed endpoints not bound")
	}
	r = base
	r.ID = "p2"
	if got, _ := binding.SecretAAD(r); bytes.Equal(got, want) {
		t.Error("provider id not bound")
	}
	for v, wantLegacy := range map[int]bool{0: true, binding.LegacyVersion: true, binding.Version: false} {
		r := base
		r.SecretAADVersion = v
		got, err := binding.SecretAADFor(r)
		if err != nil || bytes.Equal(got, binding.LegacySecretAAD("p1")) != wantLegacy {
			t.Errorf("version %d: %q %v", v, got, err)
		}
	}
	r.SecretAADVersion = 7
	if _, err := binding.SecretAADFor(r); err == nil {
		t.Error("an unknown version was accepted")
	}
	r.Config = []byte(`not json`)
	if _, err := binding.SecretAAD(r); err == nil {
		t.Error("an undecodable config was bound")
	}
}
