package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dromos-dev/dromos/internal/agentpolicy"
	"github.com/dromos-dev/dromos/internal/proxy"
	"github.com/dromos-dev/dromos/internal/state"
)

// Config is what the gateway needs to run. The CLI fills it from the
// environment (docs/GATEWAY.md).
type Config struct {
	// BrokerBaseURL is the broker's root URL (BROKER_BASE_URL).
	BrokerBaseURL string
	// BrokerAPIKey is sent to the broker as X-API-Key (BROKER_API_KEY).
	BrokerAPIKey string
	// StatePublicKeys verify the state the broker signs
	// (STATE_PUBLIC_KEYS). The gateway cannot sign.
	StatePublicKeys []state.PublicKey
	// StateKeys, when StatePublicKeys is empty, are the broker's own keys
	// (STATE_KEY / STATE_KEYS): only their public keys are kept, and the
	// gateway logs that it should be given those instead.
	StateKeys []state.Key
	// Clients are the agents allowed in (GATEWAY_API_KEYS).
	Clients []ClientKey
	// AllowAnonymous lets requests in without a key when Clients is empty
	// (GATEWAY_ALLOW_ANONYMOUS). All anonymous callers are one owner at the
	// broker (client name AnonymousClient, workspace "default"): they read
	// each other's connections, never a keyed agent's. For local use only.
	// When Clients is not empty every request must carry a key and this is
	// ignored.
	AllowAnonymous bool
	// RateLimit is requests per second per agent (per address when
	// anonymous), with bursts of twice that; 0 turns it off
	// (GATEWAY_RATE_LIMIT).
	RateLimit int
	// ConsentRatePerMinute is how many connection requests each agent (each
	// address when anonymous) may make per minute, in bursts of as many;
	// 0 turns it off (GATEWAY_CONSENT_RATE_LIMIT, 60 by default there).
	// The gateway knows the agent; the broker's own consent limit behind it
	// is its backstop.
	ConsentRatePerMinute int

	// Broker call tuning; zero means the brokerclient default.
	BrokerDialTimeout           time.Duration // 3s
	BrokerResponseHeaderTimeout time.Duration // 15s
	BrokerAttemptTimeout        time.Duration // 20s, per attempt, body included
	BrokerAttempts              int           // 3, for idempotent reads only
	BrokerRetryBase             time.Duration // 100ms
	BrokerRetryMax              time.Duration // 1s

	// Proxy is the API proxy's limits (package proxy; zero fields take
	// its defaults). Proxy.AllowPrivate must be off in production.
	Proxy proxy.Config
}

// ClientKey is one agent's credential: a name that becomes its workspace
// and client name at the broker, and the SHA-256 of its key.
type ClientKey struct {
	Name   string
	SHA256 [32]byte
	// Policy is the agent's options (package agentpolicy), the same on
	// every key of one name.
	Policy agentpolicy.Policy
}

// String never shows the hash, so that a logged Config reveals nothing that
// helps an offline guess.
func (k ClientKey) String() string { return "ClientKey(" + k.Name + ")" }

// ErrBadClientKeys is wrapped by every ParseClientKeys error.
var ErrBadClientKeys = errors.New("invalid client keys")

// maxClientName bounds a client name; it travels as a workspace id and in
// the state token, whose fields hold at most 255 bytes.
const maxClientName = 64

// MinClientKeyLen is the shortest plain key ParseClientKeys accepts, in
// characters. It stops a placeholder or a typo ("a:b") from becoming a
// credential; real keys should be random (openssl rand -hex 32).
const MinClientKeyLen = 16

// hashPrefix introduces the SHA-256 form of a key. It is matched without
// regard to case: a key written "SHA256:HEX" taken as a plain key would let
// anyone who knows the hash log in with it.
const hashPrefix = "sha256:"

// ParseClientKeys parses the GATEWAY_API_KEYS format: comma-separated
// entries "client-name:key" or "client-name:sha256:HEX" (HEX = 64 hex
// digits, the SHA-256 of the key; the prefix in any case). Spaces around
// the name, the key and the hex are ignored, as they are around a presented
// key. A plain key needs at least MinClientKeyLen characters, so a plain key
// cannot begin with "sha256:". Blank entries are skipped. A name may appear
// in several entries: each of its keys logs in as the same agent, which is
// how a key is rotated without cutting the agent off from its connections.
// One key may not serve two entries. Errors name the entry by its 1-based
// position and never include a key or a hash.
//
// An entry may end with options, each after a ';' (package agentpolicy):
// "client-name:key;proxy-only;providers=google|github". They are the
// agent's, not the key's: when a name has several entries, the options
// written on one of them apply to all, and two entries of one name giving
// different options are an error. A plain key therefore cannot hold ';'.
func ParseClientKeys(s string) ([]ClientKey, error) {
	var (
		out      []ClientKey
		hashes   = map[[32]byte]int{}
		policies = map[string]agentpolicy.Policy{}
		policyAt = map[string]int{}
	)
	for i, entry := range strings.Split(s, ",") {
		pos := i + 1
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		entry, optText, hasOpts := strings.Cut(entry, ";")
		name, key, ok := strings.Cut(entry, ":")
		name, key = strings.TrimSpace(name), strings.TrimSpace(key)
		if !ok {
			return nil, fmt.Errorf("%w: entry %d: want client-name:key or client-name:sha256:HEX", ErrBadClientKeys, pos)
		}
		if !validClientName(name) {
			return nil, fmt.Errorf("%w: entry %d: client name must be 1-%d characters of a-z A-Z 0-9 . _ -", ErrBadClientKeys, pos, maxClientName)
		}
		if strings.EqualFold(name, AnonymousClient) {
			return nil, fmt.Errorf("%w: entry %d: client name %q is reserved for anonymous callers", ErrBadClientKeys, pos, AnonymousClient)
		}
		ck := ClientKey{Name: name}
		if hasOpts {
			pol, err := agentpolicy.Parse(strings.Split(optText, ";"))
			if err != nil {
				return nil, fmt.Errorf("%w: entry %d (client %q): %w", ErrBadClientKeys, pos, name, err)
			}
			if prev, ok := policies[name]; ok && !prev.Equal(pol) {
				return nil, fmt.Errorf("%w: entry %d (client %q): options differ from entry %d's; write them on one entry of the name", ErrBadClientKeys, pos, name, policyAt[name])
			}
			policies[name], policyAt[name] = pol, pos
		}
		if len(key) >= len(hashPrefix) && strings.EqualFold(key[:len(hashPrefix)], hashPrefix) {
			b, err := hex.DecodeString(strings.TrimSpace(key[len(hashPrefix):]))
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("%w: entry %d (client %q): sha256 form needs exactly 64 hex digits", ErrBadClientKeys, pos, name)
			}
			copy(ck.SHA256[:], b)
		} else {
			switch n := utf8.RuneCountInString(key); {
			case n == 0:
				return nil, fmt.Errorf("%w: entry %d (client %q): empty key", ErrBadClientKeys, pos, name)
			case n < MinClientKeyLen:
				return nil, fmt.Errorf("%w: entry %d (client %q): key shorter than %d characters (generate one with openssl rand -hex 32)", ErrBadClientKeys, pos, name, MinClientKeyLen)
			}
			ck.SHA256 = sha256.Sum256([]byte(key))
		}
		if prev, dup := hashes[ck.SHA256]; dup {
			return nil, fmt.Errorf("%w: entry %d (client %q): same key as entry %d", ErrBadClientKeys, pos, name, prev)
		}
		hashes[ck.SHA256] = pos
		out = append(out, ck)
	}
	for i := range out {
		out[i].Policy = policies[out[i].Name]
	}
	return out, nil
}

func validClientName(s string) bool {
	if s == "" || len(s) > maxClientName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validate reports every problem with c at once. With inProcess (a broker
// given in Deps) the broker's URL is not used and may be empty.
func (c Config) validate(inProcess bool) error {
	var errs []error
	if u, err := url.Parse(c.BrokerBaseURL); !(inProcess && c.BrokerBaseURL == "") &&
		(c.BrokerBaseURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		errs = append(errs, errors.New("BROKER_BASE_URL must be an absolute http(s) URL"))
	}
	if len(c.StateKeys) == 0 && len(c.StatePublicKeys) == 0 {
		errs = append(errs, errors.New("STATE_PUBLIC_KEYS (or the broker's STATE_KEY) is required: the gateway verifies the state the broker signs"))
	}
	if len(c.Clients) == 0 && !c.AllowAnonymous {
		errs = append(errs, errors.New("no agent credentials: set GATEWAY_API_KEYS, or GATEWAY_ALLOW_ANONYMOUS=true for local use"))
	}
	seen := map[[32]byte]bool{}
	for i, k := range c.Clients {
		if !validClientName(k.Name) || strings.EqualFold(k.Name, AnonymousClient) {
			errs = append(errs, fmt.Errorf("client %d: invalid or reserved name", i+1))
		}
		// Several keys may share a name (rotation); one key naming two
		// agents would make the caller's identity depend on the order.
		if seen[k.SHA256] {
			errs = append(errs, fmt.Errorf("client %d (%q): same key as an earlier client", i+1, k.Name))
		}
		seen[k.SHA256] = true
	}
	for _, d := range []time.Duration{c.BrokerDialTimeout, c.BrokerResponseHeaderTimeout, c.BrokerAttemptTimeout, c.BrokerRetryBase, c.BrokerRetryMax} {
		if d < 0 {
			errs = append(errs, errors.New("broker timeouts and delays must not be negative"))
			break
		}
	}
	if c.RateLimit < 0 || c.ConsentRatePerMinute < 0 {
		errs = append(errs, errors.New("rate limits must not be negative"))
	}
	if c.BrokerAttempts < 0 {
		errs = append(errs, errors.New("broker attempts must not be negative"))
	}
	return errors.Join(errs...)
}
