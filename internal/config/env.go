package config

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/vault"
)

// Env is a snapshot of the environment as KEY → value.
type Env map[string]string

// FromList turns os.Environ()-style "K=V" entries into an Env.
func FromList(list []string) Env {
	env := make(Env, len(list))
	for _, kv := range list {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

// Problems collects every configuration problem, so an operator fixes them
// all in one go.
type Problems []string

func (p Problems) Error() string {
	return "configuration: " + strings.Join(p, "; ")
}

func (p *Problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p Problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return p
}

type reader struct {
	env  Env
	errs *Problems
}

func (r reader) str(key, def string) string {
	if v, ok := r.env[key]; ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

func (r reader) boolean(key string, def bool) bool {
	v := r.str(key, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.errs.add("%s must be true or false", key)
		return def
	}
	return b
}

func (r reader) port(key string, def int) int {
	v := r.str(key, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 65535 {
		r.errs.add("%s must be a port number (0-65535)", key)
		return def
	}
	return n
}

func (r reader) count(key string, def int) int {
	v := r.str(key, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 1_000_000 {
		r.errs.add("%s must be a whole number from 0 to 1000000", key)
		return def
	}
	return n
}

func (r reader) duration(key string, def time.Duration) time.Duration {
	v := r.str(key, "")
	if v == "" {
		return def
	}
	if v == "0" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		r.errs.add("%s must be a duration such as 2160h or 30m (0 disables)", key)
		return def
	}
	return d
}

func (r reader) list(key string) []string {
	var out []string
	for _, s := range strings.Split(r.str(key, ""), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// isSet reports whether the operator gave key a value (blanks do not count).
func (r reader) isSet(key string) bool { return r.str(key, "") != "" }

// needs reports that setting requires one of keys, which parsed to
// nothing. A variable that is set but invalid has its own problem already
// (or holds only separators): calling it missing would send the operator
// looking for a variable that is there.
func (r reader) needs(setting string, keys ...string) {
	var set []string
	for _, k := range keys {
		if r.isSet(k) {
			set = append(set, k)
		}
	}
	if len(set) == 0 {
		r.errs.add("%s needs %s", setting, strings.Join(keys, " or "))
		return
	}
	for _, k := range set {
		if !r.reported(k) {
			r.errs.add("%s needs a valid %s; it holds no entry", setting, k)
		}
	}
}

// reported reports whether a problem about key was already recorded.
func (r reader) reported(key string) bool {
	for _, p := range *r.errs {
		if p == key || strings.HasPrefix(p, key+" ") || strings.HasPrefix(p, key+":") {
			return true
		}
	}
	return false
}

// keyMaterial parses a base64 32-byte key; the message names the variable,
// never the value.
func (r reader) keyMaterial(key, val string) ([32]byte, bool) {
	k, err := vault.ParseKey(val)
	if err != nil {
		r.errs.add("%s must be base64 of exactly 32 bytes (generate one with `dromos keygen`)", key)
		return k, false
	}
	return k, true
}

// idKeys reads "ID:BASE64,ID:BASE64" (first primary) from multiKey, or a
// single BASE64 key (id 1) from singleKey. required says whether one of
// them must be set.
func (r reader) idKeys(multiKey, singleKey string) []idKey {
	if multi := r.list(multiKey); len(multi) > 0 {
		var keys []idKey
		seen := map[byte]bool{}
		for i, entry := range multi {
			idStr, b64, ok := strings.Cut(entry, ":")
			id, err := strconv.Atoi(idStr)
			if !ok || err != nil || id < 1 || id > 255 {
				r.errs.add("%s entry %d must be ID:BASE64 with ID 1-255", multiKey, i+1)
				continue
			}
			if seen[byte(id)] {
				r.errs.add("%s entry %d repeats key id %d", multiKey, i+1, id)
				continue
			}
			seen[byte(id)] = true
			if k, ok := r.keyMaterial(fmt.Sprintf("%s entry %d", multiKey, i+1), b64); ok {
				keys = append(keys, idKey{byte(id), k})
			}
		}
		return keys
	}
	if v := r.str(singleKey, ""); v != "" {
		if k, ok := r.keyMaterial(singleKey, v); ok {
			return []idKey{{1, k}}
		}
		return nil
	}
	return nil
}

// requiredIDKeys is idKeys for a key set the service cannot run without:
// no key at all is a problem, named after what the operator set.
func (r reader) requiredIDKeys(multiKey, singleKey, hint string) []idKey {
	before := len(*r.errs)
	keys := r.idKeys(multiKey, singleKey)
	switch {
	case len(keys) > 0 || len(*r.errs) > before:
		// Keys, or the entries that failed to parse are already reported.
	case r.str(multiKey, "") != "":
		// Only separators: "," or " , " lists nothing.
		r.errs.add("%s holds no key (expected ID:BASE64,…)", multiKey)
	default:
		r.errs.add("%s is required (%s)", singleKey, hint)
	}
	return keys
}

type idKey struct {
	id  byte
	key [32]byte
}

func toVaultKeys(ks []idKey) []vault.Key {
	out := make([]vault.Key, len(ks))
	for i, k := range ks {
		out[i] = vault.Key{ID: k.id, Secret: k.key}
	}
	return out
}

func toStateKeys(ks []idKey) []state.Key {
	out := make([]state.Key, len(ks))
	for i, k := range ks {
		secret := k.key
		out[i] = state.Key{ID: k.id, Secret: secret[:]}
	}
	return out
}

func toStatePublicKeys(ks []idKey) []state.PublicKey {
	out := make([]state.PublicKey, len(ks))
	for i, k := range ks {
		pk := k.key
		out[i] = state.PublicKey{ID: k.id, Key: pk[:]}
	}
	return out
}

// minAPIKeyLen is the shortest plain API key accepted.
const minAPIKeyLen = 16

// APIKeyHashes parses comma-separated keys, each either plain (at least 16
// characters) or "sha256:HEX" (the prefix in any case, so that a hash is
// never taken for a plain key anyone who read it could present), into
// SHA-256 digests for constant-time comparison.
func (r reader) apiKeyHashes(key string) [][32]byte {
	var out [][32]byte
	for i, k := range r.list(key) {
		if len(k) >= len("sha256:") && strings.EqualFold(k[:len("sha256:")], "sha256:") {
			hx := strings.TrimSpace(k[len("sha256:"):])
			b, err := hex.DecodeString(hx)
			if err != nil || len(b) != 32 {
				r.errs.add("%s entry %d: sha256: must be followed by 64 hex characters", key, i+1)
				continue
			}
			out = append(out, [32]byte(b))
			continue
		}
		if utf8.RuneCountInString(k) < minAPIKeyLen {
			r.errs.add("%s entry %d: a plain key must be at least %d characters (generate one with openssl rand -hex 32)", key, i+1, minAPIKeyLen)
			continue
		}
		out = append(out, sha256.Sum256([]byte(k)))
	}
	return out
}

func (r reader) cidrs(key string) []netip.Prefix {
	var out []netip.Prefix
	for i, s := range r.list(key) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if a, err2 := netip.ParseAddr(s); err2 == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			} else {
				r.errs.add("%s entry %d is not a CIDR (e.g. 10.0.0.0/8)", key, i+1)
				continue
			}
		}
		out = append(out, p.Masked())
	}
	return out
}

func (r reader) absURL(key, val string) string {
	u, err := url.Parse(val)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		// Paths are appended to it (BASE_URL + REDIRECT_PATH): a query or
		// fragment would end up in the middle of every URL built from it.
		r.errs.add("%s must be an absolute http(s) URL without credentials, query or fragment", key)
		return val
	}
	return strings.TrimSuffix(val, "/")
}

// production reads DROMOS_ENV: "production" or empty/"development".
func (r reader) production() bool {
	switch v := strings.ToLower(r.str("DROMOS_ENV", "")); v {
	case "production", "prod":
		return true
	case "", "development", "dev":
		return false
	default:
		r.errs.add("DROMOS_ENV must be production or development")
		return false
	}
}

// NewKey returns a fresh random key as standard base64, for `dromos keygen`.
func NewKey(random func([]byte) (int, error)) (string, error) {
	var b [32]byte
	if _, err := random(b[:]); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b[:]), nil
}
