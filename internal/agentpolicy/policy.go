package agentpolicy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dromos-dev/dromos/internal/scopeallow"
)

// Policy is one agent's options. The zero value is an agent with no
// restriction and no extra: today's behaviour.
type Policy struct {
	// ProxyOnly ("proxy-only"): the agent reaches provider APIs only through
	// the gateway's proxy; token reads and refreshes are refused.
	ProxyOnly bool
	// Providers ("providers=a|b"): the provider names (or aliases, as the
	// agent writes them) the agent may connect to; empty allows all.
	Providers []string
	// Scopes ("scopes=a|b|prefix*"): the scopes the agent may ask for, exact
	// or as a prefix ending in '*' (package scopeallow's forms); empty
	// allows every scope the provider allows.
	Scopes []string
	// RequireConfirmation ("require-confirmation"): every connection the
	// agent starts waits for the application to confirm its user.
	RequireConfirmation bool
	// IDToken ("id-token"): token answers to this agent include the
	// provider's id_token.
	IDToken bool
}

// Names of the options, as written in GATEWAY_API_KEYS.
const (
	OptProxyOnly           = "proxy-only"
	OptProviders           = "providers"
	OptScopes              = "scopes"
	OptRequireConfirmation = "require-confirmation"
	OptIDToken             = "id-token"
)

// ErrBadOption is wrapped by every Parse error.
var ErrBadOption = errors.New("invalid agent option")

// maxListItems bounds a providers= or scopes= list.
const maxListItems = 100

// Parse reads options ("proxy-only", "providers=google|github", …). Flags
// take no value; lists take one or more '|'-separated items. Spaces around
// options and items are ignored; an unknown, repeated or empty option is an
// error naming it.
func Parse(opts []string) (Policy, error) {
	var p Policy
	seen := map[string]bool{}
	for _, raw := range opts {
		name, value, hasValue := strings.Cut(strings.TrimSpace(raw), "=")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			return Policy{}, fmt.Errorf("%w: empty option (a stray ';'?)", ErrBadOption)
		}
		if seen[name] {
			return Policy{}, fmt.Errorf("%w: %q given twice", ErrBadOption, name)
		}
		seen[name] = true
		switch name {
		case OptProxyOnly, OptRequireConfirmation, OptIDToken:
			if hasValue {
				return Policy{}, fmt.Errorf("%w: %q takes no value", ErrBadOption, name)
			}
			switch name {
			case OptProxyOnly:
				p.ProxyOnly = true
			case OptRequireConfirmation:
				p.RequireConfirmation = true
			case OptIDToken:
				p.IDToken = true
			}
		case OptProviders, OptScopes:
			items, err := list(name, value, hasValue)
			if err != nil {
				return Policy{}, err
			}
			if name == OptScopes {
				if probs := scopeallow.Problems(items); len(probs) > 0 {
					return Policy{}, fmt.Errorf("%w: %q: %s", ErrBadOption, name, strings.Join(probs, "; "))
				}
			}
			if name == OptProviders {
				p.Providers = items
			} else {
				p.Scopes = items
			}
		default:
			return Policy{}, fmt.Errorf("%w: unknown option %q (known: %s, %s=a|b, %s=a|b, %s, %s)", ErrBadOption,
				name, OptProxyOnly, OptProviders, OptScopes, OptRequireConfirmation, OptIDToken)
		}
	}
	return p, nil
}

func list(name, value string, hasValue bool) ([]string, error) {
	if !hasValue || strings.TrimSpace(value) == "" {
		return nil, fmt.Errorf("%w: %q needs a value: %s=a|b", ErrBadOption, name, name)
	}
	var items []string
	for _, it := range strings.Split(value, "|") {
		it = strings.TrimSpace(it)
		if name == OptProviders {
			// Provider names are matched case-insensitively.
			it = strings.ToLower(it)
		}
		if it == "" {
			return nil, fmt.Errorf("%w: %q has an empty item", ErrBadOption, name)
		}
		if strings.ContainsAny(it, " \t\r\n\"\\") || !printableASCII(it) {
			return nil, fmt.Errorf("%w: %q item %d has a space, quote, backslash or non-printable character", ErrBadOption, name, len(items)+1)
		}
		if !slices.Contains(items, it) {
			items = append(items, it)
		}
	}
	if len(items) > maxListItems {
		return nil, fmt.Errorf("%w: %q lists more than %d items", ErrBadOption, name, maxListItems)
	}
	return items, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Equal reports whether p and q say the same thing (list order aside).
func (p Policy) Equal(q Policy) bool {
	return p.ProxyOnly == q.ProxyOnly && p.RequireConfirmation == q.RequireConfirmation && p.IDToken == q.IDToken &&
		sameSet(p.Providers, q.Providers) && sameSet(p.Scopes, q.Scopes)
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// AllowsProvider reports whether the agent may connect to provider name
// (compared case-insensitively with the listed names).
func (p Policy) AllowsProvider(name string) bool {
	return len(p.Providers) == 0 || slices.Contains(p.Providers, strings.ToLower(name))
}

// DisallowedScopes returns the scopes the policy does not allow, in the
// order asked; nil when all are allowed or the policy lists none. The
// forms are package scopeallow's: exact, or a prefix ending in '*'.
func (p Policy) DisallowedScopes(scopes []string) []string {
	if len(p.Scopes) == 0 {
		return nil
	}
	return scopeallow.Disallowed(p.Scopes, scopes)
}

// String lists the options in GATEWAY_API_KEYS form (for logs: it holds
// no secret).
func (p Policy) String() string {
	var opts []string
	if p.ProxyOnly {
		opts = append(opts, OptProxyOnly)
	}
	if len(p.Providers) > 0 {
		opts = append(opts, OptProviders+"="+strings.Join(p.Providers, "|"))
	}
	if len(p.Scopes) > 0 {
		opts = append(opts, OptScopes+"="+strings.Join(p.Scopes, "|"))
	}
	if p.RequireConfirmation {
		opts = append(opts, OptRequireConfirmation)
	}
	if p.IDToken {
		opts = append(opts, OptIDToken)
	}
	return strings.Join(opts, ";")
}
