package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// WriteJSONObject writes m as JSON with the given status: the same headers
// and, byte for byte, the same body as WriteJSON(w, status, m), that is
// members sorted by name, HTML characters not escaped, and a trailing
// newline. It is for the token answers, the hot path: members that are
// strings, integers, booleans, nil or json.RawMessage are written without
// reflection; any other value goes through encoding/json as before. As with
// WriteJSON, a value that cannot be encoded leaves the body empty.
func WriteJSONObject(w http.ResponseWriter, status int, m map[string]any) {
	// What Header.Set stores, with shared values (a token answer is
	// written on every read; the server only reads them).
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	w.WriteHeader(status)
	buf := objectBufs.Get().(*bytes.Buffer)
	buf.Reset()
	if err := appendObject(buf, m); err == nil {
		buf.WriteByte('\n')
		_, _ = w.Write(buf.Bytes())
	}
	if buf.Cap() <= maxPooledObject {
		objectBufs.Put(buf)
	}
}

// Header values of every token answer; never modified.
var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
)

// maxPooledObject keeps an unusually large answer's buffer out of the pool.
const maxPooledObject = 64 << 10

var objectBufs = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 1024)) }}

// appendObject writes m as encoding/json writes a map[string]any.
func appendObject(buf *bytes.Buffer, m map[string]any) error {
	if m == nil {
		buf.WriteString("null")
		return nil
	}
	var small [16]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // byte-wise, as encoding/json sorts map keys
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(appendJSONString(buf.AvailableBuffer(), k))
		buf.WriteByte(':')
		if err := appendValue(buf, m[k]); err != nil {
			return err
		}
	}
	buf.WriteByte('}')
	return nil
}

func appendValue(buf *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case nil:
		buf.WriteString("null")
	case string:
		buf.Write(appendJSONString(buf.AvailableBuffer(), v))
	case int64:
		buf.Write(strconv.AppendInt(buf.AvailableBuffer(), v, 10))
	case int:
		buf.Write(strconv.AppendInt(buf.AvailableBuffer(), int64(v), 10))
	case bool:
		buf.Write(strconv.AppendBool(buf.AvailableBuffer(), v))
	case json.RawMessage:
		// encoding/json writes a RawMessage compacted, and a nil one as
		// null (RawMessage.MarshalJSON).
		if v == nil {
			buf.WriteString("null")
			return nil
		}
		return json.Compact(buf, v)
	default:
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return err
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
	}
	return nil
}

// appendJSONString appends s quoted as encoding/json quotes a string with
// HTML escaping off (WriteJSON's setting): '"', '\\' and control characters
// escaped (\b \f \n \r \t short, the others as \u00XX), invalid UTF-8 as
// \ufffd, and U+2028 and U+2029 as \u2028 and \u2029.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
