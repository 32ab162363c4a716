package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

const (
	formatVersion = 1
	headerSize    = 2 // version byte and key id byte
	nonceSize     = 12
	tagSize       = 16
	// Overhead is how many bytes Seal adds to a plaintext.
	Overhead = headerSize + nonceSize + tagSize
)

var (
	// ErrDecrypt is the only error Open gives for a value that does not
	// authenticate: wrong key, wrong additional data, tampering, truncation or
	// an unknown format version. Telling these apart would help an attacker
	// and not an operator.
	ErrDecrypt = errors.New("vault: cannot decrypt value")
	// ErrUnknownKey reports a value sealed under a key id the keyring does not
	// hold, typically an older key removed before every value was re-sealed.
	ErrUnknownKey = errors.New("vault: value sealed with a key not in the keyring")
	// ErrDuplicateKeyID reports two keys with the same id given to NewKeyring.
	ErrDuplicateKeyID = errors.New("vault: duplicate key id")
	// ErrRandom reports that the nonce source failed; nothing was sealed.
	ErrRandom = errors.New("vault: reading nonce failed")
)

// Keyring seals with its primary key and opens with any key it holds. It is
// immutable and safe for concurrent use.
type Keyring struct {
	primary byte
	aeads   map[byte]cipher.AEAD
	rand    io.Reader
}

// NewKeyring builds a keyring that seals with primary and also opens values
// sealed with any of the older keys. Nonces come from crypto/rand; see
// WithRand. Key ids must be distinct.
func NewKeyring(primary Key, older ...Key) (*Keyring, error) {
	k := &Keyring{
		primary: primary.ID,
		aeads:   make(map[byte]cipher.AEAD, 1+len(older)),
		rand:    rand.Reader,
	}
	for _, key := range append([]Key{primary}, older...) {
		if _, dup := k.aeads[key.ID]; dup {
			return nil, fmt.Errorf("%w: %d", ErrDuplicateKeyID, key.ID)
		}
		block, err := aes.NewCipher(key.Secret[:])
		if err != nil {
			return nil, fmt.Errorf("vault: key %d: %w", key.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("vault: key %d: %w", key.ID, err)
		}
		k.aeads[key.ID] = aead
	}
	return k, nil
}

// WithRand returns a keyring sharing k's keys that draws nonces from r. It
// exists for tests; r must be safe for concurrent use if Seal is called
// concurrently, and a reader that repeats itself destroys GCM's security.
func (k *Keyring) WithRand(r io.Reader) *Keyring {
	c := *k
	c.rand = r
	return &c
}

// PrimaryID returns the id of the key Seal uses.
func (k *Keyring) PrimaryID() byte { return k.primary }

// Seal encrypts plaintext under the primary key with a fresh random nonce.
// aad is authenticated but not stored; Open needs the same bytes.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, headerSize+nonceSize, Overhead+len(plaintext))
	out[0] = formatVersion
	out[1] = k.primary
	nonce := out[headerSize : headerSize+nonceSize]
	if _, err := io.ReadFull(k.rand, nonce); err != nil {
		return nil, errors.Join(ErrRandom, err)
	}
	return k.aeads[k.primary].Seal(out, nonce, plaintext, fullAAD(out[:headerSize], aad)), nil
}

// Open authenticates and decrypts a value made by Seal, choosing the key by
// the id stored in it.
func (k *Keyring) Open(ciphertext, aad []byte) ([]byte, error) {
	if len(ciphertext) < Overhead || ciphertext[0] != formatVersion {
		return nil, ErrDecrypt
	}
	aead, ok := k.aeads[ciphertext[1]]
	if !ok {
		return nil, ErrUnknownKey
	}
	nonce := ciphertext[headerSize : headerSize+nonceSize]
	plaintext, err := aead.Open(nil, nonce, ciphertext[headerSize+nonceSize:], fullAAD(ciphertext[:headerSize], aad))
	if err != nil {
		return nil, ErrDecrypt
	}
	return plaintext, nil
}

// KeyID returns the id of the key a sealed value claims, without
// authenticating it; rotation uses it to find values still under an old key.
func KeyID(ciphertext []byte) (byte, error) {
	if len(ciphertext) < Overhead || ciphertext[0] != formatVersion {
		return 0, ErrDecrypt
	}
	return ciphertext[1], nil
}

// fullAAD binds the header to the caller's additional data. The header has a
// fixed length, so the concatenation is unambiguous.
func fullAAD(header, aad []byte) []byte {
	b := make([]byte, 0, len(header)+len(aad))
	return append(append(b, header...), aad...)
}
