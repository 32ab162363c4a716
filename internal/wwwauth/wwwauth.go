package wwwauth

import (
	"errors"
	"strings"
)

// Challenge is one authentication challenge: a scheme and its auth
// parameters (names lower-cased). Token68 holds a token68 form instead of
// parameters, when the challenge used one.
type Challenge struct {
	Scheme  string
	Params  map[string]string
	Token68 string
}

// Param returns the named parameter ("" when absent); names compare
// without case.
func (c Challenge) Param(name string) string { return c.Params[strings.ToLower(name)] }

// Limits on what Parse accepts, so a hostile server cannot make the
// broker keep a large structure.
const (
	MaxHeaderLen  = 8 << 10
	maxChallenges = 16
	maxParams     = 32
)

// ErrMalformed is returned for a header that does not follow the grammar.
var ErrMalformed = errors.New("wwwauth: malformed WWW-Authenticate header")

// Parse reads every challenge of one or more WWW-Authenticate header
// values (a sender may list several challenges in one value or repeat the
// header).
func Parse(values ...string) ([]Challenge, error) {
	var out []Challenge
	total := 0
	for _, v := range values {
		total += len(v)
		if total > MaxHeaderLen {
			return nil, ErrMalformed
		}
		cs, err := parseOne(v)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
		if len(out) > maxChallenges {
			return nil, ErrMalformed
		}
	}
	return out, nil
}

// Bearer returns the first Bearer challenge of the header values.
func Bearer(values ...string) (Challenge, bool, error) {
	cs, err := Parse(values...)
	if err != nil {
		return Challenge{}, false, err
	}
	for _, c := range cs {
		if strings.EqualFold(c.Scheme, "bearer") {
			return c, true, nil
		}
	}
	return Challenge{}, false, nil
}

type lexer struct {
	s string
	i int
}

func (l *lexer) skipSpace() {
	for l.i < len(l.s) && (l.s[l.i] == ' ' || l.s[l.i] == '\t') {
		l.i++
	}
}

func (l *lexer) done() bool { return l.i >= len(l.s) }

// token reads an RFC 9110 token.
func (l *lexer) token() string {
	start := l.i
	for l.i < len(l.s) && isTchar(l.s[l.i]) {
		l.i++
	}
	return l.s[start:l.i]
}

func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func (l *lexer) quoted() (string, error) {
	// l.s[l.i] is the opening quote.
	l.i++
	var b strings.Builder
	for l.i < len(l.s) {
		c := l.s[l.i]
		switch {
		case c == '"':
			l.i++
			return b.String(), nil
		case c == '\\':
			if l.i+1 >= len(l.s) {
				return "", ErrMalformed
			}
			b.WriteByte(l.s[l.i+1])
			l.i += 2
		case c < 0x20 && c != '\t' || c == 0x7f:
			return "", ErrMalformed
		default:
			b.WriteByte(c)
			l.i++
		}
	}
	return "", ErrMalformed
}

// token68 reads a token68 (RFC 9110 §11.2): the token characters plus
// '/', '+' and trailing '='.
func (l *lexer) token68() string {
	start := l.i
	for l.i < len(l.s) {
		c := l.s[l.i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0 {
			l.i++
			continue
		}
		break
	}
	for l.i < len(l.s) && l.s[l.i] == '=' {
		l.i++
	}
	return l.s[start:l.i]
}

func parseOne(v string) ([]Challenge, error) {
	l := &lexer{s: v}
	var out []Challenge
	for {
		// Empty list elements (", ,") are allowed.
		l.skipSpace()
		for !l.done() && l.s[l.i] == ',' {
			l.i++
			l.skipSpace()
		}
		if l.done() {
			return out, nil
		}
		scheme := l.token()
		if scheme == "" {
			return nil, ErrMalformed
		}
		c := Challenge{Scheme: scheme, Params: map[string]string{}}
		l.skipSpace()
		if err := l.params(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
		if len(out) > maxChallenges {
			return nil, ErrMalformed
		}
	}
}

// params reads the parameters (or token68) of one challenge, stopping
// before the scheme of the next one.
func (l *lexer) params(c *Challenge) error {
	first := true
	for {
		l.skipSpace()
		if l.done() {
			return nil
		}
		if l.s[l.i] == ',' {
			l.i++
			l.skipSpace()
			first = false
			continue
		}
		save := l.i
		name := l.token()
		l.skipSpace()
		if name == "" || l.done() || l.s[l.i] != '=' || (l.i+1 < len(l.s) && l.s[l.i+1] == '=') {
			// Not name=value: a token68 right after the scheme, else the
			// next challenge's scheme.
			l.i = save
			if first && len(c.Params) == 0 {
				if t := l.token68(); t != "" {
					l.skipSpace()
					if l.done() || l.s[l.i] == ',' {
						c.Token68 = t
						first = false
						continue
					}
				}
				l.i = save
			}
			if name == "" {
				return ErrMalformed
			}
			return nil
		}
		l.i++ // '='
		l.skipSpace()
		var val string
		if !l.done() && l.s[l.i] == '"' {
			var err error
			if val, err = l.quoted(); err != nil {
				return err
			}
		} else {
			val = l.token()
			if val == "" {
				return ErrMalformed
			}
		}
		key := strings.ToLower(name)
		if _, dup := c.Params[key]; dup || c.Token68 != "" {
			return ErrMalformed
		}
		if len(c.Params) >= maxParams {
			return ErrMalformed
		}
		c.Params[key] = val
		first = false
		l.skipSpace()
		if !l.done() && l.s[l.i] != ',' {
			return ErrMalformed
		}
	}
}
