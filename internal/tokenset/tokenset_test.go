package tokenset_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/storage"
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
	conn := storage.Connection{ID: "conn-1", WorkspaceID: "ws", UserID: "alice", ClientName: "agent-a", ProviderID: "prov-1"}
	ct, err := tokenset.Seal(kr, conn, set)
	if err != nil {
		t.Fatal(err)
	}
	row := storage.Token{ConnectionID: conn.ID, Ciphertext: ct, AADVersion: tokenset.AADVersion}
	got, err := tokenset.Open(kr, conn, row)
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != "at" || got.RefreshToken != "rt" || !got.Expiry.Equal(now.Add(time.Hour)) ||
		got.ExpirySource != tokenset.ExpiryFromExpiresIn || got.Extra["instance_url"] != "https://x.example" {
		t.Fatalf("round trip: %+v", got)
	}
	// A ciphertext moved onto another connection does not open, nor does
	// one whose connection was edited to another owner or provider (a
	// database writer handing it to another agent), nor one relabelled as
	// sealed with the legacy additional data.
	for name, edit := range map[string]func(*storage.Connection, *storage.Token){
		"other connection": func(c *storage.Connection, _ *storage.Token) { c.ID = "conn-2" },
		"other agent":      func(c *storage.Connection, _ *storage.Token) { c.ClientName = "agent-b" },
		"other workspace":  func(c *storage.Connection, _ *storage.Token) { c.WorkspaceID = "ws-2" },
		"other user":       func(c *storage.Connection, _ *storage.Token) { c.UserID = "mallory" },
		"other provider":   func(c *storage.Connection, _ *storage.Token) { c.ProviderID = "prov-2" },
		"shifted fields":   func(c *storage.Connection, _ *storage.Token) { c.WorkspaceID, c.UserID = "wsa", "lice" },
		"legacy version":   func(_ *storage.Connection, t *storage.Token) { t.AADVersion = tokenset.LegacyAADVersion },
		"unknown version":  func(_ *storage.Connection, t *storage.Token) { t.AADVersion = 9 },
		"version zero":     func(_ *storage.Connection, t *storage.Token) { t.AADVersion = 0 },
	} {
		c, r := conn, row
		edit(&c, &r)
		if _, err := tokenset.Open(kr, c, r); err == nil {
			t.Errorf("%s: the token still opens", name)
		}
	}
	// A row sealed before the binding (connection id only) still opens.
	legacy, err := kr.Seal([]byte(`{"access_token":"old","token_type":"Bearer"}`), tokenset.LegacyAAD(conn.ID))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{0, tokenset.LegacyAADVersion} {
		if got, err := tokenset.Open(kr, conn, storage.Token{Ciphertext: legacy, AADVersion: v}); err != nil || got.AccessToken != "old" {
			t.Errorf("legacy row (version %d): %+v %v", v, got, err)
		}
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
