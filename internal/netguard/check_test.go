package netguard_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/netguard"
)

func TestCheckURL(t *testing.T) {
	cases := []struct {
		name      string
		raw       string
		allowHTTP bool
		ok        bool
	}{
		{"https issuer", "https://accounts.google.com", false, true},
		{"https with path and query", "https://login.example.com/oauth2/token?tenant=x", false, true},
		{"public IPv4 literal", "https://93.184.216.34/token", false, true},
		{"public IPv6 literal with port", "https://[2606:4700::1]:8443/token", false, true},
		{"trailing dot", "https://idp.example.com./", false, true},
		{"http in development", "http://localhost:9000/", true, true},
		{"http in production", "http://idp.example.com/", false, false},
		{"other scheme", "ftp://idp.example.com/", true, false},
		{"javascript", "javascript:alert(1)", true, false},
		{"relative", "/token", true, false},
		{"scheme-relative", "//idp.example.com/token", true, false},
		{"no host", "https:///token", false, false},
		{"opaque", "https:idp.example.com", false, false},
		{"userinfo", "https://user:pw@idp.example.com/", false, false},
		{"userinfo hiding the host", "https://idp.example.com@10.0.0.1/", false, false},
		{"fragment", "https://idp.example.com/#x", false, false},
		{"port zero", "https://idp.example.com:0/", false, false},
		{"port too large", "https://idp.example.com:70000/", false, false},
		{"decimal IPv4 shorthand", "https://2130706433/", false, false},
		{"hex IPv4 shorthand", "https://0x7f.1/", false, false},
		{"short IPv4", "https://127.1/", false, false},
		{"zone", "https://[fe80::1%25eth0]/", false, false},
		{"underscore", "https://bad_host.example/", false, false},
		{"backslash", "https://idp.example.com\\@evil.example/", false, false},
		{"space", "https://idp.example.com/a b", false, false},
		{"newline", "https://idp.example.com/\n", false, false},
		{"non-ASCII host", "https://ïdp.example/", false, false},
		{"empty", "", true, false},
		{"too long", "https://idp.example.com/" + strings.Repeat("a", 2048), false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := netguard.CheckURL(tc.raw, tc.allowHTTP)
			if tc.ok && err != nil {
				t.Fatalf("CheckURL(%q) = %v", tc.raw, err)
			}
			if !tc.ok && !errors.Is(err, netguard.ErrInvalidURL) {
				t.Fatalf("CheckURL(%q) = %v, want ErrInvalidURL", tc.raw, err)
			}
		})
	}
}

func TestCheckURLNeverQuotesTheURL(t *testing.T) {
	for _, raw := range []string{"http://idp.example.com/?client_secret=hunter2", "https://u:hunter2@idp.example.com/", "https://idp.example.com/#hunter2"} {
		err := netguard.CheckURL(raw, false)
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("CheckURL(%q) = %v", raw, err)
		}
	}
}

func TestCheckHost(t *testing.T) {
	resolver, _ := startDNS(t, map[string][]string{
		"public.dromos.test":    {"93.184.216.34", "2606:2800:220:1::1"},
		"internal.dromos.test":  {"10.0.0.5"},
		"rebind.dromos.test":    {"93.184.216.34", "127.0.0.1"},
		"metadata.dromos.test":  {"169.254.169.254"},
		"ula.dromos.test":       {"fd00::1"},
		"mapped.dromos.test":    {"2606:2800:220:1::1", "::ffff:192.168.1.1"},
		"cgnat.dromos.test":     {"100.64.1.1"},
		"public-v6.dromos.test": {"2606:2800:220:1::1"},
	})
	cases := []struct {
		name    string
		host    string
		blocked string // class, or "" when allowed
		failure bool   // refused for another reason (no such name)
	}{
		{"public name", "public.dromos.test", "", false},
		{"public name with port", "public.dromos.test:443", "", false},
		{"public IPv6-only name", "public-v6.dromos.test", "", false},
		{"private name", "internal.dromos.test", "private", false},
		{"one private answer among public ones", "rebind.dromos.test", "loopback", false},
		{"metadata name", "metadata.dromos.test", "cloud metadata", false},
		{"unique local answer", "ula.dromos.test", "private", false},
		{"CGNAT answer", "cgnat.dromos.test", "shared (CGNAT)", false},
		{"unknown name", "missing.dromos.test", "", true},
		{"public literal", "93.184.216.34", "", false},
		{"public bracketed literal with port", "[2606:4700::1]:443", "", false},
		{"loopback literal", "127.0.0.1", "loopback", false},
		{"bracketed IPv6 loopback", "[::1]", "loopback", false},
		{"private literal with port", "10.0.0.1:443", "private", false},
		{"metadata literal", "169.254.169.254", "cloud metadata", false},
		{"IPv4-mapped loopback literal", "::ffff:127.0.0.1", "loopback", false},
		{"empty", "", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := netguard.CheckHost(ctx, resolver, tc.host)
			var be *netguard.BlockedError
			switch {
			case tc.blocked != "":
				if !errors.As(err, &be) || be.Class != tc.blocked {
					t.Fatalf("CheckHost(%q) = %v, want a %s refusal", tc.host, err, tc.blocked)
				}
			case tc.failure:
				if err == nil {
					t.Fatalf("CheckHost(%q) succeeded", tc.host)
				}
			case err != nil:
				t.Fatalf("CheckHost(%q) = %v", tc.host, err)
			}
		})
	}
}
