package tokenset

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/dromos-dev/dromos/internal/credential"
	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/storage"
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
	// Credential is the key or user/password pair of an api_key or basic
	// connection (AccessToken and TokenType then mirror it, see
	// credential.Credential.AccessToken).
	Credential *credential.Credential `json:"credential,omitempty"`
}

// New is the set for a token the provider just issued.
func New(t *exchange.Token, p provider.Profile, now time.Time) Set {
	exp, src := InferExpiry(t, p, now)
	return Set{AccessToken: t.AccessToken, TokenType: t.TokenType, RefreshToken: t.RefreshToken,
		IDToken: t.IDToken, Scope: t.Scope, Expiry: exp, ExpirySource: src, Extra: t.Extra, ObtainedAt: now}
}

// Versions of the additional data a token set is sealed with
// (storage.Token.AADVersion).
const (
	// LegacyAADVersion binds the token to its connection id only; rows
	// written before the owner binding carry it (0 reads as 1).
	LegacyAADVersion = 1
	// AADVersion also binds the connection's owner (workspace, user,
	// agent) and provider, so a database edit that hands the connection to
	// another agent or provider leaves a token that no longer opens.
	AADVersion = 2
)

// LegacyAAD is the additional authenticated data of a token set sealed
// before the owner binding.
func LegacyAAD(connID string) []byte { return []byte("token:" + connID) }

// OwnerAAD is the additional authenticated data of a connection's sealed
// token set: its id and every column that decides who may read the token
// and where it is refreshed. Each field is length-prefixed, so no two
// different owners encode alike.
func OwnerAAD(c storage.Connection) []byte {
	fields := [...]string{c.ID, c.WorkspaceID, c.UserID, c.ClientName, c.ProviderID}
	// Sized at once: it is built on every token read.
	n := len("token-v2")
	for _, f := range fields {
		n += 4 + len(f)
	}
	out := append(make([]byte, 0, n), "token-v2"...)
	for _, f := range fields {
		out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
		out = append(out, f...)
	}
	return out
}

// AADFor is the additional data a token row of connection c was sealed
// with, by the row's version; ok is false for a version this broker does
// not know (written by a newer release).
func AADFor(c storage.Connection, version int) (aad []byte, ok bool) {
	switch version {
	case 0, LegacyAADVersion:
		return LegacyAAD(c.ID), true
	case AADVersion:
		return OwnerAAD(c), true
	}
	return nil, false
}

// VerifierAAD is the additional authenticated data of a connection's
// sealed PKCE verifier.
func VerifierAAD(connID string) []byte { return []byte("pkce-verifier:" + connID) }

// Sealer and Opener are the vault operations this package needs.
type (
	Sealer interface {
		Seal(plaintext, aad []byte) ([]byte, error)
	}
	Opener interface {
		Open(ciphertext, aad []byte) ([]byte, error)
	}
)

// Seal encrypts set for the connection c, bound to its owner; the row
// written must carry AADVersion.
func Seal(v Sealer, c storage.Connection, set Set) ([]byte, error) {
	plain, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encoding token of connection %s: %w", c.ID, err)
	}
	return v.Seal(plain, OwnerAAD(c))
}

// Open decrypts the token row of connection c with the additional data its
// version names. A ciphertext sealed for another connection, or for this
// one under another owner or provider, does not open.
func Open(v Opener, c storage.Connection, tok storage.Token) (Set, error) {
	aad, ok := AADFor(c, tok.AADVersion)
	if !ok {
		return Set{}, fmt.Errorf("opening token of connection %s: unknown additional-data version %d", c.ID, tok.AADVersion)
	}
	plain, err := v.Open(tok.Ciphertext, aad)
	if err != nil {
		return Set{}, fmt.Errorf("opening token of connection %s: %w", c.ID, err)
	}
	if set, ok := decodeSet(plain); ok {
		return set, nil
	}
	var set Set
	if err := json.Unmarshal(plain, &set); err != nil {
		return Set{}, fmt.Errorf("decoding token of connection %s: %w", c.ID, err)
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

// MCPClientAAD binds a sealed MCP client credential to its authorization
// server, so a row copied to another issuer does not open.
func MCPClientAAD(issuer string) []byte { return []byte("mcp-client:" + issuer) }

// FromCredential is the set sealed for an api_key or basic connection.
func FromCredential(c credential.Credential, now time.Time) Set {
	tok, typ := c.AccessToken()
	return Set{AccessToken: tok, TokenType: typ, Credential: &c, ObtainedAt: now}
}
