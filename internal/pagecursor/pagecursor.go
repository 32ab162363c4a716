package pagecursor

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

// prefix versions the cursor's content, so that a later form can be told
// apart from this one.
const prefix = "c1."

// maxLen bounds what Decode reads; a real cursor is well under it.
const maxLen = 512

// ErrInvalid is returned for a cursor Encode did not make.
var ErrInvalid = errors.New("pagecursor: invalid cursor")

// Encode returns the cursor of the page that starts after k.
func Encode(k storage.ConnectionKey) string {
	raw := prefix + strconv.FormatInt(k.CreatedAt.UnixNano(), 10) + "." + k.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// Decode reads a cursor made by Encode.
func Decode(s string) (storage.ConnectionKey, error) {
	if s == "" || len(s) > maxLen {
		return storage.ConnectionKey{}, ErrInvalid
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return storage.ConnectionKey{}, ErrInvalid
	}
	rest, ok := strings.CutPrefix(string(b), prefix)
	if !ok {
		return storage.ConnectionKey{}, ErrInvalid
	}
	ns, id, ok := strings.Cut(rest, ".")
	if !ok || id == "" {
		return storage.ConnectionKey{}, ErrInvalid
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil || n <= 0 {
		return storage.ConnectionKey{}, ErrInvalid
	}
	for _, c := range []byte(id) {
		if c < 0x21 || c > 0x7e {
			return storage.ConnectionKey{}, ErrInvalid
		}
	}
	return storage.ConnectionKey{CreatedAt: time.Unix(0, n).UTC(), ID: id}, nil
}
