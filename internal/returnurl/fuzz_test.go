package returnurl_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/returnurl"
)

func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"https://good.com/done?x=1",
		"HTTPS://GOOD.COM./",
		"https://a.apps.example.org:8443/p?q#f",
		"https://bücher.de/ok",
		"https://xn--bcher-kva.de/",
		"https://ｇｏｏｄ.com/",
		"https://good。com/",
		"http://127.0.0.1:3000/cb",
		"http://[::1]/",
		"http://[::ffff:127.0.0.1]/",
		"https://good.com@evil.com/",
		"https://evil.com\\@good.com/",
		"//evil.com",
		"javascript:alert(1)",
		"https:evil.com",
		"https://good.com.evil.com/",
		"https://evilgood.com/",
		"http://2130706433/",
		"http://0x7f.1/",
		"https://xn--gd-fmca.com/",
		"https://good.com/ü?q=\"<>`",
		"https://[fe80::1%25eth0]/",
		"https://good.com:0443/",
		"https://good.com:8443/",
		"http://a.b.deep.example.org:80/",
		"",
	} {
		f.Add(s)
	}
	policies := []returnurl.Policy{
		{},
		{RequireHTTPS: true},
		strict,
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, p := range policies {
			u, err := p.Check(raw)
			if err != nil {
				if u != nil {
					t.Fatal("URL returned with an error")
				}
				continue
			}
			checkAccepted(t, p, raw, u)
		}
	})
}

// checkAccepted asserts what the broker relies on when it redirects to an
// accepted URL.
func checkAccepted(t *testing.T, p returnurl.Policy, raw string, u *url.URL) {
	t.Helper()
	s := u.String()
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '\\' || s[i] == '#' {
			t.Fatalf("Check(%q) = %q: byte %#x in a normalized URL", raw, s, s[i])
		}
	}
	if u.User != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		t.Fatalf("Check(%q) = %q: structurally unsafe", raw, s)
	}
	// The host a browser (or Go) reads back is the host that was judged.
	back, err := url.Parse(s)
	if err != nil {
		t.Fatalf("Check(%q) = %q does not re-parse: %v", raw, s, err)
	}
	if back.Hostname() != u.Hostname() || back.Port() != u.Port() || back.User != nil {
		t.Fatalf("Check(%q) = %q re-parses to host %q port %q", raw, s, back.Hostname(), back.Port())
	}
	// Normalization is idempotent: the normal form is accepted as itself.
	again, err := p.Check(s)
	if err != nil {
		t.Fatalf("normalized %q (from %q) refused: %v", s, raw, err)
	}
	if again.String() != s {
		t.Fatalf("normalizing %q twice: %q then %q", raw, s, again)
	}
	if len(p.AllowedDomains) > 0 && !hostListed(back.Hostname()) {
		t.Fatalf("Check(%q) accepted host %q that the strict list does not name", raw, back.Hostname())
	}
	if p.RequireHTTPS && u.Scheme == "http" {
		h := u.Hostname()
		if h != "localhost" && h != "::1" && !strings.HasPrefix(h, "127.") && !strings.HasPrefix(h, "::ffff:127.") {
			t.Fatalf("Check(%q) allowed http to %q", raw, h)
		}
	}
}

// hostListed is an independent, deliberately plain reading of the strict
// policy's allow-list, for hosts already in normal form.
func hostListed(h string) bool {
	switch h {
	case "good.com", "xn--bcher-kva.de", "127.0.0.1", "::1", "10.1.2.3":
		return true
	}
	return strings.HasSuffix(h, ".apps.example.org") || strings.HasSuffix(h, ".deep.example.org")
}
