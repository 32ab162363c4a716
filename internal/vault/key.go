package vault

import (
	"encoding/base64"
	"errors"
	"strings"
)

// KeySize is the length of an AES-256 key in bytes.
const KeySize = 32

// ErrBadKey reports a key that is not base64 of exactly KeySize bytes. It
// never carries the offending input, which may be a real key with a typo.
var ErrBadKey = errors.New("vault: key must be base64 of exactly 32 bytes")

// Key is one numbered AES-256 key. The ID is stored in every value it seals.
type Key struct {
	ID     byte
	Secret [KeySize]byte
}

// ParseKey decodes a key given as standard or URL-safe base64, with or
// without padding, as operators paste it from `openssl rand -base64 32` or
// similar. Surrounding whitespace is ignored; a mix of the two alphabets or
// non-canonical trailing bits are not.
func ParseKey(b64 string) ([KeySize]byte, error) {
	var out [KeySize]byte
	s := strings.TrimSpace(b64)
	// 44 is the padded length of 32 bytes, so anything longer is refused
	// before decoding. encoding/base64 skips \r and \n anywhere in its input;
	// a key split across lines is a paste accident, not a spelling to accept.
	if len(s) > 44 || strings.ContainsAny(s, "\r\n") {
		return out, ErrBadKey
	}
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding,
		base64.URLEncoding, base64.RawURLEncoding,
	} {
		var buf [44]byte
		n, err := enc.Strict().Decode(buf[:], []byte(s))
		if err == nil && n == KeySize {
			copy(out[:], buf[:n])
			clear(buf[:])
			return out, nil
		}
		clear(buf[:])
	}
	return out, ErrBadKey
}
