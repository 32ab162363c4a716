package state

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

const (
	// KeySize is the required length of a Key's secret.
	KeySize = 32
	// MaxTokenLen bounds the token length Verify will look at and Sign will
	// produce, so that hostile input is refused before any decoding.
	MaxTokenLen = 1024
	// MaxFieldLen is the longest string field a payload may carry.
	MaxFieldLen = 255
	// DefaultLifetime is how long a state is valid when Options.Lifetime is
	// zero; it matches the pending-connection TTL.
	DefaultLifetime = 10 * time.Minute
	// clockSkew is how far in the future IssuedAt may be, to tolerate a
	// gateway whose clock is slightly ahead of the broker's.
	clockSkew = time.Minute
)

var (
	// ErrMalformed reports input that is not a state token at all.
	ErrMalformed = errors.New("state: malformed token")
	// ErrBadSignature reports a token whose tag does not verify, including one
	// naming a key id the signer does not hold.
	ErrBadSignature = errors.New("state: bad signature")
	// ErrExpired reports a genuine token whose lifetime is over.
	ErrExpired = errors.New("state: token expired")
	// ErrNotYetValid reports a genuine token issued more than a minute in the
	// future, which means badly skewed clocks.
	ErrNotYetValid = errors.New("state: token not yet valid")

	// ErrFieldTooLong reports a payload string over MaxFieldLen bytes.
	ErrFieldTooLong = errors.New("state: payload field too long")
	// ErrTooLong reports a payload whose token would exceed MaxTokenLen.
	ErrTooLong = errors.New("state: token would be too long")
	// ErrBadTimes reports a payload whose times cannot be encoded: IssuedAt
	// not after the Unix epoch, or ExpiresAt not after IssuedAt.
	ErrBadTimes = errors.New("state: invalid issued-at or expires-at")

	// ErrBadKey reports a key whose secret is not KeySize bytes.
	ErrBadKey = errors.New("state: key must be 32 bytes")
	// ErrBadPublicKey reports a public key that is not 32 bytes.
	ErrBadPublicKey = errors.New("state: public key must be 32 bytes")
	// ErrDuplicateKeyID reports two keys with the same id.
	ErrDuplicateKeyID = errors.New("state: duplicate key id")
	// ErrNoClock reports Options without a Now function.
	ErrNoClock = errors.New("state: Options.Now is required")
)

// Payload is what a state token carries. Times have second precision.
type Payload struct {
	ConnectionID string
	WorkspaceID  string
	ProviderID   string
	Nonce        string
	IssuedAt     time.Time
	ExpiresAt    time.Time
}

// Key is one numbered state key: STATE_KEY's 32 bytes, from which the
// Ed25519 signing key is derived. Its ID travels in every token it signs.
type Key struct {
	ID     byte
	Secret []byte
}

// PublicKey is the Ed25519 public key of a Key: all a verifier needs.
type PublicKey struct {
	ID  byte
	Key ed25519.PublicKey
}

// Options configures a Signer or Verifier.
type Options struct {
	// Now is the clock. Required; pass time.Now in production.
	Now func() time.Time
	// Lifetime is used for tokens signed without an ExpiresAt. Zero means
	// DefaultLifetime.
	Lifetime time.Duration
}

// Verifier checks tokens against public keys only: it cannot sign. It is
// immutable and safe for concurrent use.
type Verifier struct {
	keys map[byte]ed25519.PublicKey
	now  func() time.Time
}

// Signer signs with its primary key and verifies with any key it holds. It is
// immutable and safe for concurrent use.
type Signer struct {
	*Verifier
	primary  byte
	private  ed25519.PrivateKey
	lifetime time.Duration
}

// seedLabel separates the signing seed from every other use of the same
// STATE_KEY.
const seedLabel = "dromos state ed25519 seed v2"

// signedPrefix is put before the body in the signed message, so a state
// signature can never be valid for any other message format.
const signedPrefix = "dromos state token v2\x00"

// privateKey derives the Ed25519 key of k.
func (k Key) privateKey() (ed25519.PrivateKey, error) {
	if len(k.Secret) != KeySize {
		return nil, fmt.Errorf("%w (key id %d)", ErrBadKey, k.ID)
	}
	m := hmac.New(sha256.New, k.Secret)
	m.Write([]byte(seedLabel))
	return ed25519.NewKeyFromSeed(m.Sum(nil)), nil
}

// Public returns the public key of k, to hand to verifiers.
func (k Key) Public() (PublicKey, error) {
	priv, err := k.privateKey()
	if err != nil {
		return PublicKey{}, err
	}
	return PublicKey{ID: k.ID, Key: priv.Public().(ed25519.PublicKey)}, nil
}

// NewVerifier builds a Verifier accepting tokens signed by any of keys.
func NewVerifier(keys []PublicKey, opts Options) (*Verifier, error) {
	if opts.Now == nil {
		return nil, ErrNoClock
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no key", ErrBadKey)
	}
	v := &Verifier{keys: make(map[byte]ed25519.PublicKey, len(keys)), now: opts.Now}
	for _, k := range keys {
		if len(k.Key) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w (key id %d)", ErrBadPublicKey, k.ID)
		}
		if _, dup := v.keys[k.ID]; dup {
			return nil, fmt.Errorf("%w: %d", ErrDuplicateKeyID, k.ID)
		}
		v.keys[k.ID] = k.Key
	}
	return v, nil
}

// NewSigner builds a Signer that signs with primary and also accepts tokens
// signed by any of the older keys.
func NewSigner(primary Key, older []Key, opts Options) (*Signer, error) {
	if opts.Now == nil {
		return nil, ErrNoClock
	}
	if opts.Lifetime < 0 {
		return nil, fmt.Errorf("state: negative lifetime %v", opts.Lifetime)
	}
	if opts.Lifetime == 0 {
		opts.Lifetime = DefaultLifetime
	}
	priv, err := primary.privateKey()
	if err != nil {
		return nil, err
	}
	pubs, err := PublicKeys(append([]Key{primary}, older...))
	if err != nil {
		return nil, err
	}
	v, err := NewVerifier(pubs, opts)
	if err != nil {
		return nil, err
	}
	return &Signer{Verifier: v, primary: primary.ID, private: priv, lifetime: opts.Lifetime}, nil
}

// PublicKeys returns the public keys of keys, in order.
func PublicKeys(keys []Key) ([]PublicKey, error) {
	out := make([]PublicKey, 0, len(keys))
	for _, k := range keys {
		pk, err := k.Public()
		if err != nil {
			return nil, err
		}
		out = append(out, pk)
	}
	return out, nil
}

// PrimaryID returns the id of the key Sign uses.
func (s *Signer) PrimaryID() byte { return s.primary }

// Sign returns the token for p. A zero IssuedAt becomes now and a zero
// ExpiresAt becomes IssuedAt plus the lifetime.
func (s *Signer) Sign(p Payload) (string, error) {
	if p.IssuedAt.IsZero() {
		p.IssuedAt = s.now()
	}
	if p.ExpiresAt.IsZero() {
		p.ExpiresAt = p.IssuedAt.Add(s.lifetime)
	}
	body, err := encode(s.primary, p)
	if err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(append(body, ed25519.Sign(s.private, signed(body))...))
	if len(token) > MaxTokenLen {
		return "", ErrTooLong
	}
	return token, nil
}

// signed is the message a signature covers.
func signed(body []byte) []byte {
	return append([]byte(signedPrefix), body...)
}

// Verify checks token and returns its payload. Only the sentinel errors of
// this package are returned, and never with the token in them.
func (v *Verifier) Verify(token string) (Payload, error) {
	if len(token) > MaxTokenLen || !urlAlphabet(token) {
		return Payload{}, ErrMalformed
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) < minBodyLen+ed25519.SignatureSize || raw[0] != version {
		return Payload{}, ErrMalformed
	}
	key, ok := v.keys[raw[1]]
	if !ok {
		return Payload{}, ErrBadSignature
	}
	body, sig := raw[:len(raw)-ed25519.SignatureSize], raw[len(raw)-ed25519.SignatureSize:]
	// crypto/ed25519 refuses non-canonical signatures, so one payload has
	// one accepted token.
	if !ed25519.Verify(key, signed(body), sig) {
		return Payload{}, ErrBadSignature
	}
	// Only authenticated bytes are parsed beyond this point.
	p, err := decode(body)
	if err != nil {
		return Payload{}, err
	}
	now := v.now()
	if p.IssuedAt.After(now.Add(clockSkew)) {
		return Payload{}, ErrNotYetValid
	}
	if !now.Before(p.ExpiresAt) {
		return Payload{}, ErrExpired
	}
	return p, nil
}

// urlAlphabet reports whether t uses only the base64url alphabet. It is
// checked before decoding because encoding/base64 silently skips newlines,
// which would let many strings verify as one token.
func urlAlphabet(t string) bool {
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// FormatPublicKeys writes keys as STATE_PUBLIC_KEYS takes them:
// ID:BASE64,… (standard base64 of the 32-byte key), first primary.
func FormatPublicKeys(keys []PublicKey) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = strconv.Itoa(int(k.ID)) + ":" + base64.StdEncoding.EncodeToString(k.Key)
	}
	return strings.Join(parts, ",")
}
