package webhook

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// SecretPrefix starts every webhook secret in its text form.
const SecretPrefix = "whsec_"

// secretSize is the number of random bytes in a new secret. The
// specification asks for 24 to 64 bytes; 32 matches the HMAC-SHA256 block
// strength.
const secretSize = 32

// Bounds on the key length ParseSecret accepts, from the specification.
const (
	minSecretSize = 24
	maxSecretSize = 64
)

// ErrBadSecret: a secret's text form is not "whsec_" followed by the
// standard base64 of 24 to 64 bytes.
var ErrBadSecret = errors.New("webhook: malformed secret")

// Secret is the HMAC key of a webhook endpoint. Its String and LogValue
// redact it; Reveal gives the text form that is shown to the endpoint's
// owner.
type Secret struct {
	key []byte
}

// NewSecret draws a fresh secret of 32 bytes from random, which must be a
// cryptographically secure source such as crypto/rand.Reader.
func NewSecret(random io.Reader) (Secret, error) {
	key := make([]byte, secretSize)
	if _, err := io.ReadFull(random, key); err != nil {
		return Secret{}, fmt.Errorf("webhook: drawing a secret: %w", err)
	}
	return Secret{key: key}, nil
}

// ParseSecret reads the text form produced by Reveal.
func ParseSecret(s string) (Secret, error) {
	enc, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return Secret{}, ErrBadSecret
	}
	key, err := base64.StdEncoding.Strict().DecodeString(enc)
	if err != nil || len(key) < minSecretSize || len(key) > maxSecretSize {
		return Secret{}, ErrBadSecret
	}
	return Secret{key: key}, nil
}

// Reveal returns the text form "whsec_" + base64(key). Only the answer
// that creates or rotates an endpoint's secret may carry it.
func (s Secret) Reveal() string {
	return SecretPrefix + base64.StdEncoding.EncodeToString(s.key)
}

// IsZero reports whether s holds no key.
func (s Secret) IsZero() bool { return len(s.key) == 0 }

// String redacts the secret so that a formatted value cannot leak it.
func (s Secret) String() string { return SecretPrefix + "[redacted]" }

// GoString redacts the secret under %#v too.
func (s Secret) GoString() string { return s.String() }

// LogValue redacts the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
