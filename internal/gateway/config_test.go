package gateway_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/gateway"
	"github.com/dromos-dev/dromos/internal/state"
)

func TestParseClientKeys(t *testing.T) {
	sumOf := func(k string) [32]byte { return sha256.Sum256([]byte(k)) }
	hexOf := func(k string) string { s := sumOf(k); return hex.EncodeToString(s[:]) }
	cases := []struct {
		name    string
		in      string
		want    []gateway.ClientKey
		errPart string // the error must contain it
	}{
		{"empty", "", nil, ""},
		{"only blanks", " , ,, ", nil, ""},
		{"plain", "agent-a:key-one", []gateway.ClientKey{{Name: "agent-a", SHA256: sumOf("key-one")}}, ""},
		{"plain key with colons", "agent-a:k:e:y", []gateway.ClientKey{{Name: "agent-a", SHA256: sumOf("k:e:y")}}, ""},
		{"sha256 form", "agent-b:sha256:" + hexOf("key-two"), []gateway.ClientKey{{Name: "agent-b", SHA256: sumOf("key-two")}}, ""},
		{"upper-case hex", "agent-b:sha256:" + strings.ToUpper(hexOf("key-two")), []gateway.ClientKey{{Name: "agent-b", SHA256: sumOf("key-two")}}, ""},
		{"mixed with blanks and spaces", " agent-a:key-one , , agent-b:sha256:" + hexOf("key-two") + " ,",
			[]gateway.ClientKey{{Name: "agent-a", SHA256: sumOf("key-one")}, {Name: "agent-b", SHA256: sumOf("key-two")}}, ""},
		{"bad hex", "agent-a:sha256:" + strings.Repeat("zz", 32), nil, "entry 1"},
		{"short hex", "agent-a:key-one,agent-b:sha256:abcd", nil, "entry 2"},
		{"long hex", "agent-a:sha256:" + hexOf("k") + "00", nil, "entry 1"},
		{"duplicate names", "agent-a:key-one,,agent-a:key-two", nil, "entry 3"},
		{"duplicate keys", "agent-a:key-one,agent-b:sha256:" + hexOf("key-one"), nil, "entry 2"},
		{"no colon", "agent-a:key-one,justakey-SECRET", nil, "entry 2"},
		{"empty key", "agent-a:", nil, "entry 1"},
		{"empty name", ":key-SECRET", nil, "entry 1"},
		{"bad name", "agent a:key-SECRET", nil, "entry 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := gateway.ParseClientKeys(tc.in)
			if tc.errPart != "" {
				if err == nil || !errors.Is(err, gateway.ErrBadClientKeys) || !strings.Contains(err.Error(), tc.errPart) {
					t.Fatalf("got %v, want ErrBadClientKeys naming %q", err, tc.errPart)
				}
				for _, secret := range []string{"key-one", "key-two", "SECRET", "justakey", strings.Repeat("zz", 4)} {
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
				if got[i] != tc.want[i] {
					t.Fatalf("entry %d: got %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func FuzzParseClientKeys(f *testing.F) {
	for _, s := range []string{"", "a:b", "a:sha256:" + strings.Repeat("0", 64), "a:b,,c:d", ":", "a:sha256:", ",,,"} {
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
		names := map[string]bool{}
		for _, k := range keys {
			if k.Name == "" || names[k.Name] {
				t.Fatalf("accepted empty or duplicate name in %q", s)
			}
			names[k.Name] = true
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
		{"duplicate client", func(c *gateway.Config) { c.Clients = append(c.Clients, gateway.ClientKey{Name: "a"}) }, gateway.Deps{Now: clock}, "duplicate"},
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
