package broker_test

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/broker"
)

func TestReturnURLTricksRefused(t *testing.T) {
	h := newHarness(t, sqliteURL(t), func(c *broker.Config) {
		c.EnforceReturnURL = true
		c.AllowedReturnDomains = []string{"good.com", "*.apps.good.com"}
	})
	f := newFakeProvider(t)
	h.registerProvider(f.profile("fake"))
	for _, bad := range []string{
		"https://good.com@evil.com/", `https://evil.com\@good.com/`, "https://good.com.evil.com/",
		"https://evilgood.com/", "https://apps.good.com.evil.io/", "https://xn--gd-8ka.com/", "javascript:alert(1)",
		"//good.com/x", "http://good.com/", "https://good.com/\r\nSet-Cookie:x", "https://evil.com/?https://good.com",
		"data:text/html,hi", "https://apps.good.com/", // the wildcard means proper subdomains only
	} {
		var env envelope
		st := h.do("POST", "/auth/consent-spec", map[string]any{"workspace_id": "w", "provider_name": "fake", "return_url": bad}, &env)
		if st != 400 || env.Code != "bad_request" {
			t.Errorf("%q accepted: %d %+v", bad, st, env)
		}
	}
	for _, good := range []string{"https://good.com/done?x=1", "https://GOOD.com./done", "https://a.apps.good.com/cb"} {
		var c consentResp
		if st := h.do("POST", "/auth/consent-spec", map[string]any{"workspace_id": "w", "provider_name": "fake", "return_url": good}, &c); st != 200 {
			t.Errorf("%q refused: %d", good, st)
		}
	}
}

func TestForgedForwardingHeadersIgnored(t *testing.T) {
	h := newHarness(t, sqliteURL(t), func(c *broker.Config) {
		c.RequireAllowlist = true
		c.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	for name, hdr := range map[string]http.Header{
		"X-Forwarded-For": {"X-Forwarded-For": {"10.1.2.3"}},
		"X-Real-IP":       {"X-Real-Ip": {"10.1.2.3"}},
		"True-Client-IP":  {"True-Client-Ip": {"10.1.2.3"}},
		"Forwarded":       {"Forwarded": {"for=10.1.2.3"}},
	} {
		req, _ := http.NewRequest("GET", h.srv.URL+"/providers", nil)
		req.Header = hdr
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s from an untrusted peer let the request in: %d", name, resp.StatusCode)
		}
	}
	// Through a trusted proxy (the loopback peer), the forwarded client counts.
	trusted := newHarness(t, sqliteURL(t), func(c *broker.Config) {
		c.RequireAllowlist = true
		c.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	for hdr, want := range map[string]int{"10.1.2.3": 200, "192.0.2.9": 403, "10.1.2.3, 192.0.2.9": 403} {
		req, _ := http.NewRequest("GET", trusted.srv.URL+"/providers", nil)
		req.Header.Set("X-Forwarded-For", hdr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("XFF %q via trusted proxy: %d, want %d", hdr, resp.StatusCode, want)
		}
	}
}

func TestCallbackRateLimit(t *testing.T) {
	h := newHarness(t, sqliteURL(t), func(c *broker.Config) { c.CallbackRatePerMinute = 20 })
	codes := map[int]int{}
	var retry string
	for i := 0; i < 21; i++ {
		resp, err := http.Get(h.srv.URL + "/auth/callback?" + url.Values{"state": {"junk"}, "code": {"x"}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes[resp.StatusCode]++
		if resp.StatusCode == 429 {
			retry = resp.Header.Get("Retry-After")
		}
	}
	if codes[400] != 20 || codes[429] != 1 || retry == "" || retry == "0" {
		t.Fatalf("codes %v, Retry-After %q", codes, retry)
	}
}

func TestProductionRefusesInternalProviderEndpoints(t *testing.T) {
	h := newHarness(t, sqliteURL(t), func(c *broker.Config) { c.ProviderNetGuard = true })
	for name, p := range map[string]map[string]any{
		"plain http":     {"auth_url": "http://8.8.8.8/authorize", "token_url": "https://8.8.8.8/token"},
		"metadata":       {"auth_url": "https://8.8.8.8/authorize", "token_url": "https://169.254.169.254/latest/token"},
		"loopback":       {"auth_url": "https://127.0.0.1/authorize", "token_url": "https://127.0.0.1/token"},
		"private issuer": {"issuer": "https://10.0.0.8", "enable_discovery": true},
	} {
		p["name"], p["client_id"], p["client_secret"] = "p", "c", "s"
		var env envelope
		if st := h.do("POST", "/providers", map[string]any{"profile": p}, &env); st != 400 {
			t.Errorf("%s: registered (%d %+v)", name, st, env)
		} else if !strings.Contains(env.Message, "must be an https URL") && !strings.Contains(env.Message, "private") {
			t.Errorf("%s: unclear message %q", name, env.Message)
		}
	}
}
