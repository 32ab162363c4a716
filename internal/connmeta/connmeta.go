package connmeta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/dromos-dev/dromos/internal/ctrlchar"
)

// Limits on one connection's metadata.
const (
	MaxEntries = 64
	MaxKeyLen  = 128
	// MaxDepth is how many arrays or objects a value may nest: 1 and "a"
	// have depth 0, [1] and {"a":1} depth 1, {"a":[1]} depth 2.
	MaxDepth = 8
	// MaxSize bounds the compact JSON encoding of the whole metadata
	// object, braces, keys and separators included.
	MaxSize = 4096
)

// Error is a metadata problem. Its message names the key (when there is
// one) and never quotes a value.
type Error struct {
	Key    string // "" for a problem of the whole object
	Reason string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return "metadata: " + e.Reason
	}
	return fmt.Sprintf("metadata %q: %s", e.Key, e.Reason)
}

// Normalize checks m against the limits and returns a copy whose values
// are compact JSON (insignificant whitespace removed, nothing else
// changed). A nil or empty m gives nil. Keys are checked in sorted order,
// so the same input always reports the same problem first.
func Normalize(m map[string]json.RawMessage) (map[string]json.RawMessage, error) {
	if len(m) == 0 {
		return nil, nil
	}
	if len(m) > MaxEntries {
		return nil, &Error{Reason: fmt.Sprintf("at most %d entries (got %d)", MaxEntries, len(m))}
	}
	out := make(map[string]json.RawMessage, len(m))
	for _, k := range sortedKeys(m) {
		switch {
		case k == "":
			return nil, &Error{Key: k, Reason: "keys must not be empty"}
		case len(k) > MaxKeyLen:
			return nil, &Error{Key: truncate(k, 32) + "…", Reason: fmt.Sprintf("keys are at most %d bytes", MaxKeyLen)}
		}
		if ctrlchar.Index(k) >= 0 {
			return nil, &Error{Key: truncate(k, 64), Reason: "keys must not contain control characters or invalid UTF-8"}
		}
		v, err := checkValue(m[k])
		if err != nil {
			return nil, &Error{Key: k, Reason: err.Error()}
		}
		out[k] = v
	}
	if n := len(Encode(out)); n > MaxSize {
		return nil, &Error{Reason: fmt.Sprintf("larger than %d bytes encoded (got %d)", MaxSize, n)}
	}
	return out, nil
}

// FromStrings turns string labels (the older form of metadata) into JSON
// string values.
func FromStrings(m map[string]string) map[string]json.RawMessage {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[k] = String(v)
	}
	return out
}

// String encodes s as a JSON string value, without HTML escaping.
func String(s string) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// AsString returns the string a value holds, and false when the value is
// not a JSON string.
func AsString(v json.RawMessage) (string, bool) {
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// Encode writes m as one compact JSON object with sorted keys and the
// values exactly as they are (they must be valid JSON; Normalize's output
// is). It never HTML-escapes. A nil or empty m encodes as {}.
func Encode(m map[string]json.RawMessage) []byte {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(String(k))
		buf.WriteByte(':')
		buf.Write(m[k])
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

// checkValue returns v compacted after checking that it is one JSON value,
// nested at most MaxDepth deep, with no control character in any string.
func checkValue(v json.RawMessage) (json.RawMessage, error) {
	var compact bytes.Buffer
	if err := json.Compact(&compact, v); err != nil || compact.Len() == 0 {
		return nil, errors.New("value is not valid JSON")
	}
	if !utf8.Valid(compact.Bytes()) {
		return nil, errors.New("value is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(compact.Bytes()))
	dec.UseNumber()
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errors.New("value is not one JSON value")
		}
		switch t := tok.(type) {
		case json.Delim:
			if t == '{' || t == '[' {
				depth++
				if depth > MaxDepth {
					return nil, fmt.Errorf("value nests deeper than %d arrays or objects", MaxDepth)
				}
			} else {
				depth--
			}
		case string:
			if ctrlchar.Index(t) >= 0 {
				return nil, errors.New("value holds a string with a control character")
			}
		}
	}
	return compact.Bytes(), nil
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
