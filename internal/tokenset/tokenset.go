package tokenset

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/provider"
)

// Set is what is sealed in the vault for a connection. It holds live
// credentials: never log it.
type Set struct {
	AccessToken  string         `json:"access_token"`
	TokenType    string         `json:"token_type"`
	RefreshToken string         `json:"refresh_token,omitempty"`
	IDToken      string         `json:"id_token,omitempty"`
	Scope        string         `json:"scope,omitempty"`
	Expiry       time.Time      `json:"expiry,omitzero"`
	ExpirySource string         `json:"expiry_source,omitempty"`
	Extra        map[string]any `json:"extra,omitempty"`
	ObtainedAt   time.Time      `json:"obtained_at"`
}

// New is the set for a token the provider just issued.
func New(t *exchange.Token, p provider.Profile, now time.Time) Set {
	exp, src := InferExpiry(t, p, now)
	return Set{AccessToken: t.AccessToken, TokenType: t.TokenType, RefreshToken: t.RefreshToken,
		IDToken: t.IDToken, Scope: t.Scope, Expiry: exp, ExpirySource: src, Extra: t.Extra, ObtainedAt: now}
}

// AAD is the additional authenticated data of a connection's sealed token
// set.
func AAD(connID string) []byte { return []byte("token:" + connID) }

// VerifierAAD is the additional authenticated data of a connection's
// sealed PKCE verifier.
func VerifierAAD(connID string) []byte { return []byte("pkce-verifier:" + connID) }

// ClientSecretAAD is the additional authenticated data of a provider's
// sealed client secret.
func ClientSecretAAD(providerID string) []byte { return []byte("provider-secret:" + providerID) }

// Sealer and Opener are the vault operations this package needs.
type (
	Sealer interface {
		Seal(plaintext, aad []byte) ([]byte, error)
	}
	Opener interface {
		Open(ciphertext, aad []byte) ([]byte, error)
	}
)

// Seal encrypts set for the connection connID.
func Seal(v Sealer, connID string, set Set) ([]byte, error) {
	plain, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encoding token of connection %s: %w", connID, err)
	}
	return v.Seal(plain, AAD(connID))
}

// Open decrypts the token set sealed for connID. A ciphertext sealed for
// another connection does not open.
func Open(v Opener, connID string, ciphertext []byte) (Set, error) {
	plain, err := v.Open(ciphertext, AAD(connID))
	if err != nil {
		return Set{}, fmt.Errorf("opening token of connection %s: %w", connID, err)
	}
	if set, ok := decodeSet(plain); ok {
		return set, nil
	}
	var set Set
	if err := json.Unmarshal(plain, &set); err != nil {
		return Set{}, fmt.Errorf("decoding token of connection %s: %w", connID, err)
	}
	return set, nil
}

// Holds reports whether the decoded JSON value v (a provider extra) has an
// object member with one of names at any depth. A string or number, as most
// extras are, costs one type switch.
func Holds(v any, names ...string) bool {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if slices.Contains(names, k) || Holds(e, names...) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if Holds(e, names...) {
				return true
			}
		}
	}
	return false
}
