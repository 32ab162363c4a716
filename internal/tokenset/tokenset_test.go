package tokenset_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/tokenset"
	"github.com/dromos-dev/dromos/internal/vault"
)

func keyring(t testing.TB) *vault.Keyring {
	t.Helper()
	k := vault.Key{ID: 1}
	if _, err := rand.Read(k.Secret[:]); err != nil {
		t.Fatal(err)
	}
	kr, err := vault.NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestSealOpenBindsConnection(t *testing.T) {
	kr := keyring(t)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	set := tokenset.New(&exchange.Token{AccessToken: "at", TokenType: "Bearer", RefreshToken: "rt", Scope: "a b",
		Expiry: now.Add(time.Hour), Extra: map[string]any{"instance_url": "https://x.example"}}, provider.Profile{}, now)
	ct, err := tokenset.Seal(kr, "conn-1", set)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tokenset.Open(kr, "conn-1", ct)
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != "at" || got.RefreshToken != "rt" || !got.Expiry.Equal(now.Add(time.Hour)) ||
		got.ExpirySource != tokenset.ExpiryFromExpiresIn || got.Extra["instance_url"] != "https://x.example" {
		t.Fatalf("round trip: %+v", got)
	}
	// A ciphertext moved onto another connection does not open.
	if _, err := tokenset.Open(kr, "conn-2", ct); err == nil {
		t.Fatal("a token sealed for conn-1 opened as conn-2's")
	}
	// Nor does the PKCE verifier's associated data open a token.
	if _, err := kr.Open(ct, tokenset.VerifierAAD("conn-1")); err == nil {
		t.Fatal("token ciphertext opened with the verifier's associated data")
	}
}

func TestInferExpiry(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	jwt := func(exp int64) string {
		claims, _ := json.Marshal(map[string]any{"exp": exp})
		return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(claims) + ".c2ln"
	}
	tests := []struct {
		name     string
		tok      exchange.Token
		lifetime int64
		want     time.Time
		source   string
	}{
		{"expires_in wins", exchange.Token{AccessToken: jwt(now.Add(time.Minute).Unix()), Expiry: now.Add(time.Hour)}, 60,
			now.Add(time.Hour), tokenset.ExpiryFromExpiresIn},
		{"jwt exp", exchange.Token{AccessToken: jwt(now.Add(5 * time.Minute).Unix())}, 7200,
			now.Add(5 * time.Minute), tokenset.ExpiryFromJWT},
		{"implausible jwt exp falls to the default", exchange.Token{AccessToken: jwt(now.Add(-48 * time.Hour).Unix())}, 7200,
			now.Add(2 * time.Hour), tokenset.ExpiryFromDefault},
		{"opaque token, provider default", exchange.Token{AccessToken: "opaque"}, 7200, now.Add(2 * time.Hour), tokenset.ExpiryFromDefault},
		{"unknown", exchange.Token{AccessToken: "opaque"}, 0, time.Time{}, tokenset.ExpiryUnknown},
		{"three dots that are no JWT", exchange.Token{AccessToken: "a.b.c"}, 0, time.Time{}, tokenset.ExpiryUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, src := tokenset.InferExpiry(&tt.tok, provider.Profile{TokenLifetimeSeconds: tt.lifetime}, now)
			if !got.Equal(tt.want) || src != tt.source {
				t.Errorf("got %v (%s), want %v (%s)", got, src, tt.want, tt.source)
			}
		})
	}
}
