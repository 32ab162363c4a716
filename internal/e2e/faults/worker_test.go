package faults_test

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/broker"
	"github.com/dromos-dev/dromos/internal/discovery"
	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/idtoken"
	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/vault"
)

// brokerAt is an in-process broker on store whose clock reads now: it runs
// the background worker's passes as a replica would at that moment,
// without the test waiting for it.
func brokerAt(t *testing.T, store storage.Storage, s secrets, now func() time.Time) *broker.Broker {
	t.Helper()
	decode := func(b64 string) []byte {
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(b) != 32 {
			t.Fatalf("test key: %v", err)
		}
		return b
	}
	vk := vault.Key{ID: 1}
	copy(vk.Secret[:], decode(s.encryptionKey))
	ring, err := vault.NewKeyring(vk)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := state.NewSigner(state.Key{ID: 1, Secret: decode(s.stateKey)}, nil, state.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(broker.Config{BaseURL: "http://127.0.0.1:1", RedirectPath: "/auth/callback"}, broker.Deps{
		Store: store, Vault: ring, State: signer,
		Exchange:  exchange.New(exchange.Options{Now: now}),
		Discovery: discovery.New(discovery.Options{Now: now}),
		IDTokens:  idtoken.NewVerifier(idtoken.Options{Now: now}),
		Now:       now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
