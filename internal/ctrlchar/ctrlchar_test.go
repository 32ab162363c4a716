package ctrlchar

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestIndex(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want int
	}{
		{"empty", "", -1},
		{"ascii", "alice@example.com", -1},
		{"space and tilde", " ~", -1},
		{"non-ASCII letters", "Zoë ✓ 日本", -1},
		{"U+00A0 is not C1", "a\u00a0b", -1},
		{"NUL", "a\x00", 1},
		{"tab", "a\tb", 1},
		{"newline", "line\n", 4},
		{"escape sequence", "\x1b[2J", 0},
		{"DEL", "ab\x7f", 2},
		{"C1 CSI encoded", "x\u009b31m", 1},
		{"C1 NEL", "\u0085", 0},
		{"C1 APC last", "ok\u009f", 2},
		{"raw CSI byte", "x\x9b31m", 1},
		{"truncated sequence", "é\xc3", 2},
		{"overlong encoding", "\xc0\x80", 0},
		{"surrogate half", "\xed\xa0\x80", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Index(tc.in); got != tc.want {
				t.Fatalf("Index(%q) = %d, want %d", tc.in, got, tc.want)
			}
			err := Check("user_id", tc.in)
			if (err == nil) != (tc.want < 0) {
				t.Fatalf("Check(%q) = %v, want error %v", tc.in, err, tc.want >= 0)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "user_id ") {
				t.Fatalf("Check error %q does not name the field", err)
			}
		})
	}
}

func TestCheckMessage(t *testing.T) {
	err := Check(`metadata "note"`, "hi\x1b]0;pwned\x07")
	if err == nil || err.Error() != `metadata "note" must not contain control characters (U+001B at byte 2)` {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "pwned") {
		t.Fatal("the message quotes the input")
	}
	err = Check("name", "a\xffb")
	if err == nil || err.Error() != "name is not valid UTF-8 (byte 1)" {
		t.Fatalf("got %v", err)
	}
}

// FuzzIndex checks Index against a rune-by-rune reading of the definition:
// the text before the offset is clean, the rune at it is a control
// character or an invalid byte, and a clean string is valid UTF-8 with no
// byte a terminal reads as a control.
func FuzzIndex(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b[31m", "\u009b", "\x9b", "é", "\xc3", "a\u00a0\u2028b", "\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		i := Index(s)
		if i < 0 {
			if !utf8.ValidString(s) {
				t.Fatalf("%q: invalid UTF-8 accepted", s)
			}
			for _, r := range s {
				if unicode.IsControl(r) {
					t.Fatalf("%q: control U+%04X accepted", s, r)
				}
			}
			for j := 0; j < len(s); j++ {
				if s[j] < 0x20 || s[j] == 0x7f {
					t.Fatalf("%q: C0 byte accepted", s)
				}
			}
			return
		}
		if i >= len(s) {
			t.Fatalf("%q: offset %d out of range", s, i)
		}
		if Index(s[:i]) != -1 || !utf8.ValidString(s[:i]) {
			t.Fatalf("%q: text before offset %d is not clean", s, i)
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if !(r == utf8.RuneError && n == 1) && !unicode.IsControl(r) {
			t.Fatalf("%q: offset %d holds U+%04X, not a control", s, i, r)
		}
		if Check("f", s) == nil {
			t.Fatalf("%q: Check accepted what Index refused", s)
		}
	})
}
