package cli

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// printable returns s with everything a terminal would act on instead of
// show escaped: C0 controls (tab and newline too, which would break a
// table's columns or forge a row), DEL, C1 controls, bidirectional and
// other invisible format characters, and bytes that are not UTF-8.
// Values printed by the CLI come from agents, users and providers
// (metadata, user ids, display names); printed raw, an ESC sequence could
// clear the operator's screen, retitle the window or fake a line.
// Backslashes are escaped too, so an escape in the output is never
// mistaken for one in the data.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == '\\' || r == utf8.RuneError || !unicode.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case unicode.IsPrint(r):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += size
	}
	return b.String()
}
