package scopeallow

import (
	"fmt"
	"strings"
)

// Limits on an allowlist: enough for the largest provider scope sets
// (Google's API scopes), small enough that a profile stays readable.
const (
	MaxEntries  = 200
	MaxEntryLen = 256
)

// Wildcard ends an entry that matches by prefix.
const Wildcard = "*"

// Problems lists every malformed entry of list, as messages naming the
// field ("allowed_scopes[2] ..."). Entries are scope tokens (RFC 6749
// §3.3: printable ASCII but space, '"' and '\'); '*' may only end one, and
// a prefix entry needs at least one character before it, since a lone '*'
// would mean "any scope" and that is what an empty list says.
func Problems(list []string) []string {
	var probs []string
	if len(list) > MaxEntries {
		probs = append(probs, fmt.Sprintf("allowed_scopes may hold at most %d entries", MaxEntries))
	}
	for i, e := range list {
		field := fmt.Sprintf("allowed_scopes[%d]", i)
		prefix, _ := strings.CutSuffix(e, Wildcard)
		switch {
		case e == "" || len(e) > MaxEntryLen:
			probs = append(probs, fmt.Sprintf("%s must be 1-%d characters", field, MaxEntryLen))
		case !tokenChars(e):
			probs = append(probs, fmt.Sprintf("%s must be printable ASCII without spaces, '\"' or '\\'", field))
		case prefix == "":
			probs = append(probs, fmt.Sprintf("%s: a lone %q would allow every scope; leave allowed_scopes empty for that", field, Wildcard))
		case strings.Contains(prefix, Wildcard):
			probs = append(probs, fmt.Sprintf("%s: %q may only end an entry (prefix match)", field, Wildcard))
		}
	}
	return probs
}

func tokenChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// Allows reports whether list allows scope. An empty list allows every
// scope.
func Allows(list []string, scope string) bool {
	if len(list) == 0 {
		return true
	}
	for _, e := range list {
		if prefix, ok := strings.CutSuffix(e, Wildcard); ok {
			if prefix != "" && strings.HasPrefix(scope, prefix) {
				return true
			}
		} else if e == scope {
			return true
		}
	}
	return false
}

// Disallowed returns the scopes of asked that list does not allow, in the
// order asked, each once; nil when all are allowed.
func Disallowed(list []string, asked []string) []string {
	var out []string
	for _, s := range asked {
		if !Allows(list, s) && !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
