package state

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
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

// Key is one numbered HMAC key; its ID travels in every token it signs.
type Key struct {
	ID     byte
	Secret []byte
}

// Options configures a Signer.
type Options struct {
	// Now is the clock. Required; pass time.Now in production.
	Now func() time.Time
	// Lifetime is used for tokens signed without an ExpiresAt. Zero means
	// DefaultLifetime.
	Lifetime time.Duration
}

// Signer signs with its primary key and verifies with any key it holds. It is
// immutable and safe for concurrent use.
type Signer struct {
	primary  byte
	macKeys  map[byte][]byte
	now      func() time.Time
	lifetime time.Duration
}

// derivationLabel separates state tags from every other HMAC made with the
// same STATE_KEY.
const derivationLabel = "dromos state token v1"

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
	s := &Signer{
		primary:  primary.ID,
		macKeys:  make(map[byte][]byte, 1+len(older)),
		now:      opts.Now,
		lifetime: opts.Lifetime,
	}
	for _, k := range append([]Key{primary}, older...) {
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("%w (key id %d)", ErrBadKey, k.ID)
		}
		if _, dup := s.macKeys[k.ID]; dup {
			return nil, fmt.Errorf("%w: %d", ErrDuplicateKeyID, k.ID)
		}
		d := hmac.New(sha256.New, k.Secret)
		d.Write([]byte(derivationLabel))
		s.macKeys[k.ID] = d.Sum(nil)
	}
	return s, nil
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
	token := base64.RawURLEncoding.EncodeToString(appendTag(body, s.macKeys[s.primary], body))
	if len(token) > MaxTokenLen {
		return "", ErrTooLong
	}
	return token, nil
}

// Verify checks token and returns its payload. Only the sentinel errors of
// this package are returned, and never with the token in them.
func (s *Signer) Verify(token string) (Payload, error) {
	if len(token) > MaxTokenLen || !urlAlphabet(token) {
		return Payload{}, ErrMalformed
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) < minBodyLen+sha256.Size || raw[0] != version {
		return Payload{}, ErrMalformed
	}
	key, ok := s.macKeys[raw[1]]
	if !ok {
		return Payload{}, ErrBadSignature
	}
	body, tag := raw[:len(raw)-sha256.Size], raw[len(raw)-sha256.Size:]
	// The tag is computed into its own array: appending to body would write
	// over the received tag, which shares body's backing array.
	var want [sha256.Size]byte
	if !hmac.Equal(tag, appendTag(want[:0], key, body)) {
		return Payload{}, ErrBadSignature
	}
	// Only authenticated bytes are parsed beyond this point.
	p, err := decode(body)
	if err != nil {
		return Payload{}, err
	}
	now := s.now()
	if p.IssuedAt.After(now.Add(clockSkew)) {
		return Payload{}, ErrNotYetValid
	}
	if !now.Before(p.ExpiresAt) {
		return Payload{}, ErrExpired
	}
	return p, nil
}

// appendTag appends the HMAC of body under key to dst.
func appendTag(dst, key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(dst)
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
