package ctrlchar

import (
	"fmt"
	"unicode/utf8"
)

// Index returns the byte offset of the first control character or invalid
// UTF-8 byte in s, or -1 when s has none.
func Index(s string) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || r >= 0x80 && r <= 0x9f {
			return i
		}
		i += n
	}
	return -1
}

// Check returns nil when s holds no control character and is valid UTF-8,
// and otherwise an error saying what was found and where, without quoting
// s. field names the input in the message.
func Check(field, s string) error {
	i := Index(s)
	if i < 0 {
		return nil
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && n == 1 {
		return fmt.Errorf("%s is not valid UTF-8 (byte %d)", field, i)
	}
	return fmt.Errorf("%s must not contain control characters (U+%04X at byte %d)", field, r, i)
}
