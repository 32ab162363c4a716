// Package jsonscan walks the members of a JSON object without reflection,
// for the two hot paths that read a JSON object on every token request
// (opening a sealed token set, and the gateway reading the broker's token
// answer). It only applies to input encoding/json accepts; callers fall
// back to encoding/json whenever Members reports false, so that every input
// decodes exactly as encoding/json decodes it.
package jsonscan

import "encoding/json"

// Members calls fn with the raw name (the bytes between the quotes) and the
// raw value of each member of the JSON object b, in order. It returns false
// without calling fn further when b is not one valid JSON object (white
// space around it is fine), when a name holds an escape or a byte outside
// printable ASCII (encoding/json would unescape or fold it), or when fn
// returns false. The slices point into b.
func Members(b []byte, fn func(name, value []byte) bool) bool {
	// From here on b is known to be one valid JSON value, so the scanning
	// below need not check syntax: it only finds where each token ends.
	if !json.Valid(b) {
		return false
	}
	i := skipSpace(b, 0)
	if b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if b[i] == '}' {
		return true
	}
	for {
		// b[i] is the opening quote of a name.
		end := i + 1
		for ; b[end] != '"'; end++ {
			if c := b[end]; c == '\\' || c < 0x20 || c > 0x7e {
				return false
			}
		}
		name := b[i+1 : end]
		i = skipSpace(b, end+1) // at ':'
		start := skipSpace(b, i+1)
		stop := skipValue(b, start)
		if !fn(name, b[start:stop:stop]) {
			return false
		}
		i = skipSpace(b, stop) // at ',' or '}'
		if b[i] == '}' {
			return true
		}
		i = skipSpace(b, i+1)
	}
}

// PlainString returns the contents of the JSON string literal v when it is
// printable ASCII without escapes, the case where they are the decoded
// string itself.
func PlainString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	for _, c := range v[1 : len(v)-1] {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return "", false
		}
	}
	return string(v[1 : len(v)-1]), true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the valid JSON value that starts
// at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
	default: // number, true, false or null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// skipString returns the index just past the string literal that starts at
// b[i].
func skipString(b []byte, i int) int {
	for i++; ; i++ {
		switch b[i] {
		case '\\':
			i++ // the escaped character (a \u escape's digits need no care)
		case '"':
			return i + 1
		}
	}
}

// Object returns the members of the JSON object b as json.Unmarshal into a
// map[string]json.RawMessage gives them (a later duplicate wins, an empty
// object is an empty map), the values being slices of b rather than copies.
// ok is false where Members does not apply: the caller then decodes with
// encoding/json.
func Object(b []byte) (m map[string]json.RawMessage, ok bool) {
	m = make(map[string]json.RawMessage, 4)
	if !Members(b, func(name, value []byte) bool {
		m[string(name)] = json.RawMessage(value)
		return true
	}) {
		return nil, false
	}
	return m, true
}
