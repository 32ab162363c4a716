package tokenset_test

import (
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
)

// BenchmarkOpen is the token read's decryption and decoding, for a set as
// the broker stores it after a code exchange.
func BenchmarkOpen(b *testing.B) {
	kr := keyring(b)
	now := time.Now()
	set := tokenset.New(&exchange.Token{AccessToken: "at-0000000000000000000000000000000000000001", TokenType: "Bearer",
		RefreshToken: "rt-0000000000000000000000000000000000000001", Scope: "read write", Expiry: now.Add(time.Hour)},
		provider.Profile{}, now)
	conn := storage.Connection{ID: "0b5c2a0e-7c1f-4a53-9d7e-3f1f3c2b9a10", UserID: "user-1", ClientName: "agent", ProviderID: "prov"}
	ct, err := tokenset.Seal(kr, conn, set)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tokenset.Open(kr, conn, storage.Token{Ciphertext: ct, AADVersion: tokenset.AADVersion}); err != nil {
			b.Fatal(err)
		}
	}
}
