package gateway_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/agentpolicy"
	"github.com/dromos-dev/dromos/internal/gateway"
	"github.com/dromos-dev/dromos/internal/state"
)

func TestParseClientKeys(t *testing.T) {
	const (
		keyOne = "key-one-SECRET-0001" // 19 characters
		keyTwo = "key-two-SECRET-0002"
	)
	sumOf := func(k string) [32]byte { return sha256.Sum256([]byte(k)) }
	hexOf := func(k string) string { s := sumOf(k); return hex.EncodeToString(s[:]) }
	one := func(name, key string) []gateway.ClientKey {
		return []gateway.ClientKey{{Name: name, SHA256: sumOf(key)}}
	}
	cases := []struct {
		name    string
		in      string
		want    []gateway.ClientKey
		errPart string // the error must contain it
	}{
		{"empty", "", nil, ""},
		{"only blanks", " , ,, ", nil, ""},
		{"plain", "agent-a:" + keyOne, one("agent-a", keyOne), ""},
		{"plain key with colons", "agent-a:k:e:y-SECRET-0123456", one("agent-a", "k:e:y-SECRET-0123456"), ""},
		{"sha256 form", "agent-b:sha256:" + hexOf(keyTwo), one("agent-b", keyTwo), ""},
		{"upper-case hex", "agent-b:sha256:" + strings.ToUpper(hexOf(keyTwo)), one("agent-b", keyTwo), ""},
		{"mixed with blanks and spaces", " agent-a:" + keyOne + " , , agent-b:sha256:" + hexOf(keyTwo) + " ,",
			[]gateway.ClientKey{{Name: "agent-a", SHA256: sumOf(keyOne)}, {Name: "agent-b", SHA256: sumOf(keyTwo)}}, ""},
		// The key is trimmed like a presented key, or nobody could match it.
		{"space after colon", "alice: " + keyOne, one("alice", keyOne), ""},
		{"tab and space around key", "alice:\t" + keyOne + " ", one("alice", keyOne), ""},
		{"space after sha256 prefix", "alice:sha256: " + hexOf(keyOne), one("alice", keyOne), ""},
		{"space before sha256 prefix", "alice: sha256:" + hexOf(keyOne), one("alice", keyOne), ""},
		// The prefix in any case is the hash form, never a plain key equal
		// to the literal "SHA256:HEX" (which anyone with the hash could send).
		{"upper-case prefix", "alice:SHA256:" + hexOf(keyOne), one("alice", keyOne), ""},
		{"mixed-case prefix", "alice:Sha256:" + hexOf(keyOne), one("alice", keyOne), ""},
		{"upper-case prefix, bad hex", "alice:SHA256:" + strings.Repeat("zz", 32), nil, "entry 1"},
		{"upper-case prefix, short hex", "agent-a:" + keyOne + ",alice:SHA256:abcd", nil, "entry 2"},
		{"upper-case prefix, no hex", "alice:SHA256:", nil, "64 hex digits"},
		{"bad hex", "agent-a:sha256:" + strings.Repeat("zz", 32), nil, "entry 1"},
		{"short hex", "agent-a:" + keyOne + ",agent-b:sha256:abcd", nil, "entry 2"},
		{"long hex", "agent-a:sha256:" + hexOf("k") + "00", nil, "entry 1"},
		{"odd hex", "agent-a:sha256:" + hexOf("k")[:63], nil, "entry 1"},
		// Plain keys shorter than MinClientKeyLen are refused.
		{"one-character key", "a:b", nil, "entry 1"},
		{"15-character key", "agent-a:" + keyOne + ",agent-b:" + strings.Repeat("S", 15), nil, "shorter than 16"},
		{"short key after trimming", "agent-a:  SECRET-short  ", nil, "entry 1"},
		{"16-character key", "agent-a:" + strings.Repeat("S", 16), one("agent-a", strings.Repeat("S", 16)), ""},
		{"16 multi-byte characters", "agent-a:" + strings.Repeat("é", 16), one("agent-a", strings.Repeat("é", 16)), ""},
		// Several keys per agent: rotation keeps the agent (and its
		// connections) while both keys work.
		{"two keys for one agent", "agent-a:" + keyOne + ",,agent-a:sha256:" + hexOf(keyTwo),
			[]gateway.ClientKey{{Name: "agent-a", SHA256: sumOf(keyOne)}, {Name: "agent-a", SHA256: sumOf(keyTwo)}}, ""},
		{"one key twice for one agent", "agent-a:" + keyOne + ",agent-a:sha256:" + hexOf(keyOne), nil, "entry 2"},
		{"duplicate keys", "agent-a:" + keyOne + ",agent-b:sha256:" + hexOf(keyOne), nil, "entry 2"},
		{"duplicate keys across prefix case", "agent-a:" + keyOne + ",agent-b:SHA256:" + hexOf(keyOne), nil, "entry 2"},
		{"no colon", "agent-a:" + keyOne + ",justakey-SECRET", nil, "entry 2"},
		{"empty key", "agent-a:", nil, "entry 1"},
		{"blank key", "agent-a:   ", nil, "empty key"},
		{"empty name", ":key-SECRET-0123456789", nil, "entry 1"},
		{"bad name", "agent a:key-SECRET-0123456789", nil, "entry 1"},
		{"reserved name", "agent-a:" + keyOne + ",Anonymous:key-SECRET-0123456789", nil, "reserved for anonymous"},
		// Options after the key belong to the agent: written once, they
		// apply to each of its keys.
		{"options", "agent-a:" + keyOne + "; proxy-only ;providers=Google|github;scopes=repo|https://x.example/*",
			[]gateway.ClientKey{{Name: "agent-a", SHA256: sumOf(keyOne), Policy: agentpolicy.Policy{ProxyOnly: true,
				Providers: []string{"google", "github"}, Scopes: []string{"repo", "https://x.example/*"}}}}, ""},
		{"options on the hash form", "agent-b:sha256:" + hexOf(keyTwo) + ";require-confirmation;id-token",
			[]gateway.ClientKey{{Name: "agent-b", SHA256: sumOf(keyTwo), Policy: agentpolicy.Policy{RequireConfirmation: true, IDToken: true}}}, ""},
		{"options apply to every key of the name", "agent-a:" + keyOne + ",agent-a:" + keyTwo + ";proxy-only",
			[]gateway.ClientKey{{Name: "agent-a", SHA256: sumOf(keyOne), Policy: agentpolicy.Policy{ProxyOnly: true}},
				{Name: "agent-a", SHA256: sumOf(keyTwo), Policy: agentpolicy.Policy{ProxyOnly: true}}}, ""},
		{"same options twice", "agent-a:" + keyOne + ";proxy-only,agent-a:" + keyTwo + ";proxy-only",
			[]gateway.ClientKey{{Name: "agent-a", SHA256: sumOf(keyOne), Policy: agentpolicy.Policy{ProxyOnly: true}},
				{Name: "agent-a", SHA256: sumOf(keyTwo), Policy: agentpolicy.Policy{ProxyOnly: true}}}, ""},
		{"options differ between keys", "agent-a:" + keyOne + ";proxy-only,agent-a:" + keyTwo + ";id-token", nil, "options differ from entry 1"},
		{"unknown option", "agent-a:" + keyOne + ";proxy_only", nil, `unknown option "proxy_only"`},
		{"flag with a value", "agent-a:" + keyOne + ";proxy-only=yes", nil, "takes no value"},
		{"list without a value", "agent-a:" + keyOne + ";providers", nil, "needs a value"},
		{"empty list item", "agent-a:" + keyOne + ";providers=google||github", nil, "empty item"},
		{"bad scope entry", "agent-a:" + keyOne + ";scopes=*", nil, "would allow every scope"},
		{"stray semicolon", "agent-a:" + keyOne + ";", nil, "empty option"},
		{"repeated option", "agent-a:" + keyOne + ";scopes=a;scopes=b", nil, "given twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := gateway.ParseClientKeys(tc.in)
			if tc.errPart != "" {
				if err == nil || !errors.Is(err, gateway.ErrBadClientKeys) || !strings.Contains(err.Error(), tc.errPart) {
					t.Fatalf("got %v, want ErrBadClientKeys naming %q", err, tc.errPart)
				}
				for _, secret := range []string{"SECRET", "justakey", "SSSS", "abcd", strings.Repeat("zz", 4), hexOf("k")[:16], hexOf(keyOne)[:16]} {
					if strings.Contains(err.Error(), secret) {
						t.Fatalf("error reveals %q: %v", secret, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].Name != tc.want[i].Name || got[i].SHA256 != tc.want[i].SHA256 || !got[i].Policy.Equal(tc.want[i].Policy) {
					t.Fatalf("entry %d: got %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestClientKeyHashFormIsNotAPassword shows the attack the case-insensitive
// prefix closes: with "SHA256:HEX" configured, the literal string
// "SHA256:HEX" (known to anyone who saw the hash) must not authenticate;
// only the key whose hash it is does.
func TestClientKeyHashFormIsNotAPassword(t *testing.T) {
	const key = "agent-key-SECRET-0123456789"
	sum := sha256.Sum256([]byte(key))
	literal := "SHA256:" + hex.EncodeToString(sum[:])
	clients, err := gateway.ParseClientKeys("alice:" + literal)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{BrokerBaseURL: "http://127.0.0.1:1", StateKeys: []state.Key{stateKey(1)}, Clients: clients},
		gateway.Deps{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	h := g.HTTPHandler()
	status := func(presented string) int {
		// A malformed id is refused after authentication, before any
		// broker call.
		req := httptest.NewRequest("GET", "/v1/token/not-a-uuid", nil)
		req.Header.Set("Authorization", "Bearer "+presented)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if st := status(literal); st != 401 {
		t.Fatalf("the configured hash text logs in: %d", st)
	}
	if st := status(key); st != 400 {
		t.Fatalf("the real key: %d, want 400 for the malformed id", st)
	}
}

func FuzzParseClientKeys(f *testing.F) {
	for _, s := range []string{"", "a:b", "a:sha256:" + strings.Repeat("0", 64), "a:SHA256:" + strings.Repeat("0", 64), "a: 0123456789abcdef ", "a:b,,c:d", ":", "a:sha256:", ",,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := gateway.ParseClientKeys(s)
		if err != nil {
			if !errors.Is(err, gateway.ErrBadClientKeys) {
				t.Fatalf("error does not wrap ErrBadClientKeys: %v", err)
			}
			return
		}
		sums := map[[32]byte]bool{}
		for _, k := range keys {
			if k.Name == "" || sums[k.SHA256] {
				t.Fatalf("accepted an empty name or one key twice in %q", s)
			}
			sums[k.SHA256] = true
		}
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	good := func() gateway.Config {
		return gateway.Config{
			BrokerBaseURL: "http://127.0.0.1:1",
			StateKeys:     []state.Key{stateKey(1)},
			Clients:       []gateway.ClientKey{{Name: "a"}},
		}
	}
	cases := []struct {
		name string
		edit func(*gateway.Config)
		deps gateway.Deps
		want string
	}{
		{"no credentials", func(c *gateway.Config) { c.Clients = nil }, gateway.Deps{Now: clock}, "set GATEWAY_API_KEYS, or GATEWAY_ALLOW_ANONYMOUS=true"},
		{"no state key", func(c *gateway.Config) { c.StateKeys = nil }, gateway.Deps{Now: clock}, "STATE_KEY"},
		{"short state key", func(c *gateway.Config) { c.StateKeys = []state.Key{{ID: 1, Secret: []byte("short")}} }, gateway.Deps{Now: clock}, "STATE_KEY"},
		{"no broker URL", func(c *gateway.Config) { c.BrokerBaseURL = "" }, gateway.Deps{Now: clock}, "BROKER_BASE_URL"},
		{"relative broker URL", func(c *gateway.Config) { c.BrokerBaseURL = "broker:8080" }, gateway.Deps{Now: clock}, "BROKER_BASE_URL"},
		{"one key for two clients", func(c *gateway.Config) { c.Clients = append(c.Clients, gateway.ClientKey{Name: "b"}) }, gateway.Deps{Now: clock}, "same key"},
		{"negative timeout", func(c *gateway.Config) { c.BrokerAttemptTimeout = -time.Second }, gateway.Deps{Now: clock}, "negative"},
		{"no clock", func(*gateway.Config) {}, gateway.Deps{}, "Now"},
		{"registerer without gatherer", func(*gateway.Config) {}, gateway.Deps{Now: clock, Registerer: prometheus.WrapRegistererWith(nil, prometheus.NewRegistry())}, "Gatherer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good()
			tc.edit(&cfg)
			_, err := gateway.New(cfg, tc.deps)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
	if _, err := gateway.New(good(), gateway.Deps{Now: clock}); err != nil {
		t.Fatalf("the good config fails: %v", err)
	}
	anon := good()
	anon.Clients, anon.AllowAnonymous = nil, true
	if _, err := gateway.New(anon, gateway.Deps{Now: clock}); err != nil {
		t.Fatalf("anonymous config fails: %v", err)
	}
}
