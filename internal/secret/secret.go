package secret

import (
	"fmt"
	"log/slog"
	"strconv"
)

// Redacted is what every printed or encoded form of a non-empty String shows.
const Redacted = "[REDACTED]"

// String holds a secret. Its zero value is the empty secret.
//
// An empty String prints as the empty string rather than Redacted: knowing
// that a secret is unset is what an operator debugging configuration needs,
// and it reveals nothing about any real value.
type String string

// Reveal returns the secret itself. Call it only at the point of use (an
// outgoing request, a cipher), never to build log or error text.
func (s String) Reveal() string { return string(s) }

// IsEmpty reports whether the secret is unset, without revealing it.
func (s String) IsEmpty() bool { return s == "" }

func (s String) redacted() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// String implements fmt.Stringer.
func (s String) String() string { return s.redacted() }

// GoString implements fmt.GoStringer, for %#v.
func (s String) GoString() string { return strconv.Quote(s.redacted()) }

// Format implements fmt.Formatter so that no verb, not even %x or %q, can
// reach the underlying bytes. Width and flags are ignored on purpose: padding
// is cosmetic and honouring %x would need the real value.
func (s String) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		_, _ = f.Write([]byte(strconv.Quote(s.redacted())))
	case 'v':
		if f.Flag('#') {
			_, _ = f.Write([]byte(s.GoString()))
			return
		}
		_, _ = f.Write([]byte(s.redacted()))
	default:
		_, _ = f.Write([]byte(s.redacted()))
	}
}

// LogValue implements slog.LogValuer.
func (s String) LogValue() slog.Value { return slog.StringValue(s.redacted()) }

// MarshalJSON implements json.Marshaler. Decoding needs no counterpart: a
// JSON string unmarshals into a String through its underlying kind, which is
// how configuration loads secrets.
func (s String) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(s.redacted())), nil
}

// MarshalText implements encoding.TextMarshaler, so encoders other than
// encoding/json (slog's text handler on a struct, XML, form encoders) redact
// too.
func (s String) MarshalText() ([]byte, error) { return []byte(s.redacted()), nil }
