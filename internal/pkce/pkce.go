package pkce

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
)

// Method is the code_challenge_method value for ChallengeS256.
const Method = "S256"

// verifierEntropy is 32 bytes, the amount RFC 7636 section 7.1 recommends;
// it encodes to the minimum verifier length of 43 characters.
const verifierEntropy = 32

const (
	minVerifierLen = 43
	maxVerifierLen = 128
)

// ErrRandom reports that the randomness source failed; no verifier was made.
var ErrRandom = errors.New("pkce: reading randomness failed")

// NewVerifier returns a fresh code verifier: 32 bytes from r, base64url
// encoded without padding (43 characters). A nil r means crypto/rand.
func NewVerifier(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [verifierEntropy]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", errors.Join(ErrRandom, err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// ChallengeS256 returns BASE64URL(SHA256(ASCII(verifier))) without padding,
// the code_challenge sent with method S256.
func ChallengeS256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ValidVerifier reports whether v is a syntactically valid code verifier:
// 43 to 128 characters from the unreserved set [A-Za-z0-9-._~].
func ValidVerifier(v string) bool {
	if len(v) < minVerifierLen || len(v) > maxVerifierLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		if !unreserved(v[i]) {
			return false
		}
	}
	return true
}

func unreserved(c byte) bool {
	switch {
	case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	case c == '-', c == '.', c == '_', c == '~':
		return true
	}
	return false
}
