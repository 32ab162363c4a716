package cli

import (
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestPrintable(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "alice@example.com", "alice@example.com"},
		{"unicode letters stay", "Zoë · 東京", "Zoë · 東京"},
		{"ESC clear screen", "a\x1b[2Jb", `a\x1b[2Jb`},
		{"OSC window title", "\x1b]0;pwned\x07", `\x1b]0;pwned\x07`},
		{"newline and tab", "row\nfake\trow", `row\x0afake\x09row`},
		{"carriage return", "ok\rEVIL", `ok\x0dEVIL`},
		{"DEL", "x\x7fy", `x\x7fy`},
		{"C1 CSI", "a\u009b31mb", `a\x9b31mb`},
		{"C1 NEL", "a\u0085b", `a\x85b`},
		{"bidi override", "abc\u202edcba", `abc\u202edcba`},
		{"invalid UTF-8", "a\xffb", `a\xffb`},
		{"backslash", `C:\x1b`, `C:\\x1b`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := printable(tc.in)
			if got != tc.want {
				t.Fatalf("printable(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if !utf8.ValidString(got) {
				t.Fatalf("%q is not UTF-8", got)
			}
			for _, r := range got {
				if !unicode.IsPrint(r) {
					t.Fatalf("%q keeps %U", got, r)
				}
			}
		})
	}
}

func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"", "a\x1b[2J", "\u009b", "\xff\xfe", "\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := printable(s)
		if !utf8.ValidString(got) {
			t.Fatalf("%q is not UTF-8", got)
		}
		for _, r := range got {
			if !unicode.IsPrint(r) {
				t.Fatalf("printable(%q) keeps %U", s, r)
			}
		}
	})
}
