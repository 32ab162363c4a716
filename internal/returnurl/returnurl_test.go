package returnurl_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/returnurl"
)

var strict = returnurl.Policy{
	AllowedDomains: []string{"good.com", "good.com:8443", "*.apps.example.org", "**.deep.example.org", "bücher.de", "127.0.0.1", "[::1]", "10.1.2.3"},
	RequireHTTPS:   true,
}

func TestCheckAccepts(t *testing.T) {
	cases := []struct {
		name   string
		policy returnurl.Policy
		raw    string
		want   string
	}{
		{"exact host", strict, "https://good.com/done?x=1", "https://good.com/done?x=1"},
		{"upper-case scheme and host are lowered", strict, "HTTPS://GOOD.COM/Done", "https://good.com/Done"},
		{"trailing dot removed", strict, "https://good.com./done", "https://good.com/done"},
		{"port kept", strict, "https://good.com:8443/cb", "https://good.com:8443/cb"},
		{"port leading zeros dropped", strict, "https://good.com:0443/cb", "https://good.com:443/cb"},
		{"empty port dropped", strict, "https://good.com:/cb", "https://good.com/cb"},
		{"wildcard one level", strict, "https://a.apps.example.org/", "https://a.apps.example.org/"},
		{"deep wildcard one level", strict, "https://x.deep.example.org/", "https://x.deep.example.org/"},
		{"deep wildcard deeper levels", strict, "https://x.y.deep.example.org/", "https://x.y.deep.example.org/"},
		{"default port written out", strict, "https://good.com:443/cb", "https://good.com:443/cb"},
		{"entry with scheme and port", returnurl.Policy{AllowedDomains: []string{"http://intranet.example:8080"}}, "http://intranet.example:8080/cb", "http://intranet.example:8080/cb"},
		{"entry with any port", returnurl.Policy{AllowedDomains: []string{"good.com:*"}}, "https://good.com:9999/cb", "https://good.com:9999/cb"},
		{"IPv6 entry with port", returnurl.Policy{AllowedDomains: []string{"[2001:db8::1]:8443"}}, "https://[2001:db8::1]:8443/", "https://[2001:db8::1]:8443/"},
		{"unicode host matches its unicode entry", strict, "https://bücher.de/ok", "https://xn--bcher-kva.de/ok"},
		{"punycode host matches the unicode entry", strict, "https://xn--bcher-kva.de/ok", "https://xn--bcher-kva.de/ok"},
		{"full-width letters map to the ASCII host", strict, "https://ｇｏｏｄ.com/", "https://good.com/"},
		{"ideographic full stop is a dot", strict, "https://good。com/", "https://good.com/"},
		{"loopback IPv4 over http", strict, "http://127.0.0.1:3000/cb", "http://127.0.0.1:3000/cb"},
		{"loopback IPv6 over http", strict, "http://[::1]:3000/cb", "http://[::1]:3000/cb"},
		{"listed private IP over https", strict, "https://10.1.2.3/cb", "https://10.1.2.3/cb"},
		{"no allow-list: any host", returnurl.Policy{}, "http://anything.example/x", "http://anything.example/x"},
		{"no allow-list: localhost over http", returnurl.Policy{RequireHTTPS: true}, "http://localhost:8080/", "http://localhost:8080/"},
		{"no allow-list: loopback /8", returnurl.Policy{RequireHTTPS: true}, "http://127.9.9.9/", "http://127.9.9.9/"},
		{"IPv6 canonicalized", returnurl.Policy{}, "https://[2001:DB8:0:0::1]/", "https://[2001:db8::1]/"},
		{"non-ASCII path and query encoded", returnurl.Policy{}, "https://a.example/ü?q=ü", "https://a.example/%C3%BC?q=%C3%BC"},
		{"encoded slash kept", returnurl.Policy{}, "https://a.example/a%2Fb", "https://a.example/a%2Fb"},
		{"double slash path stays on host", strict, "https://good.com//evil.com", "https://good.com//evil.com"},
		{"no path", strict, "https://good.com", "https://good.com"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := tc.policy.Check(tc.raw)
			if err != nil {
				t.Fatalf("Check(%q): %v", tc.raw, err)
			}
			if got := u.String(); got != tc.want {
				t.Fatalf("Check(%q) = %q, want %q", tc.raw, got, tc.want)
			}
		})
	}
}

func TestCheckRefuses(t *testing.T) {
	open := returnurl.Policy{}
	cases := []struct {
		name   string
		policy returnurl.Policy
		raw    string
		kind   error
	}{
		{"empty", open, "", returnurl.ErrMalformed},
		{"too long", open, "https://good.com/" + strings.Repeat("a", returnurl.MaxLength), returnurl.ErrMalformed},
		{"invalid UTF-8", open, "https://good.com/\xff", returnurl.ErrMalformed},
		{"NUL", open, "https://good.com/\x00", returnurl.ErrMalformed},
		{"newline in host", open, "https://good.com\n.evil.com/", returnurl.ErrMalformed},
		{"tab", open, "https://go\tod.com/", returnurl.ErrMalformed},
		{"DEL", open, "https://good.com/\x7f", returnurl.ErrMalformed},
		{"C1 control", open, "https://good.com/\u0085", returnurl.ErrMalformed},
		{"space", open, "https://good.com/a b", returnurl.ErrMalformed},
		{"no-break space", open, "https://good.com/\u00a0", returnurl.ErrMalformed},
		{"zero-width space in host", open, "https://go\u200bod.com/", returnurl.ErrMalformed},
		{"right-to-left override", open, "https://good.com/\u202egnp.exe", returnurl.ErrMalformed},
		{"backslash as slash", open, "https:\\\\evil.com", returnurl.ErrMalformed},
		{"backslash before at-sign", strict, "https://evil.com\\@good.com", returnurl.ErrMalformed},
		{"backslash in path", open, "https://good.com/a\\b", returnurl.ErrMalformed},
		{"javascript", open, "javascript:alert(1)", returnurl.ErrMalformed},
		{"javascript with slashes", open, "javascript://good.com/%0aalert(1)", returnurl.ErrMalformed},
		{"data", open, "data:text/html,<script>alert(1)</script>", returnurl.ErrMalformed},
		{"file", open, "file:///etc/passwd", returnurl.ErrMalformed},
		{"ftp", open, "ftp://good.com/", returnurl.ErrMalformed},
		{"scheme-relative", open, "//evil.com/x", returnurl.ErrMalformed},
		{"relative path", open, "/done", returnurl.ErrMalformed},
		{"bare host", open, "good.com/done", returnurl.ErrMalformed},
		{"opaque https", open, "https:evil.com", returnurl.ErrMalformed},
		{"single slash https", open, "https:/evil.com", returnurl.ErrMalformed},
		{"triple slash https", open, "https:///evil.com", returnurl.ErrMalformed},
		{"userinfo hides the host", strict, "https://good.com@evil.com/", returnurl.ErrMalformed},
		{"userinfo with password", strict, "https://user:pw@good.com/", returnurl.ErrMalformed},
		{"empty userinfo", strict, "https://@good.com/", returnurl.ErrMalformed},
		{"fragment", strict, "https://good.com/#x", returnurl.ErrMalformed},
		{"empty fragment", strict, "https://good.com/#", returnurl.ErrMalformed},
		{"port zero", open, "https://good.com:0/", returnurl.ErrMalformed},
		{"port too large", open, "https://good.com:65536/", returnurl.ErrMalformed},
		{"port not numeric", open, "https://good.com:https/", returnurl.ErrMalformed},
		{"percent-encoded dot in host", open, "https://good.com%2eevil.com/", returnurl.ErrMalformed},
		{"percent-encoded UTF-8 host", strict, "https://b%C3%BCcher.de/", returnurl.ErrMalformed},
		{"percent-encoded invalid UTF-8 host", open, "https://Xn-%800000000000/", returnurl.ErrMalformed},
		{"underscore in host", open, "https://bad_host.com/", returnurl.ErrMalformed},
		{"empty label", open, "https://good..com/", returnurl.ErrMalformed},
		{"two trailing dots", open, "https://good.com../", returnurl.ErrMalformed},
		{"label too long", open, "https://" + strings.Repeat("a", 64) + ".com/", returnurl.ErrMalformed},
		{"name too long", open, "https://" + strings.Repeat("abcdefghi.", 26) + "com/", returnurl.ErrMalformed},
		{"invalid punycode", open, "https://xn--zz.com/", returnurl.ErrMalformed},
		{"decimal IPv4 shorthand", open, "http://2130706433/", returnurl.ErrMalformed},
		{"hex IPv4 shorthand", open, "http://0x7f.1/", returnurl.ErrMalformed},
		{"short IPv4", open, "http://127.1/", returnurl.ErrMalformed},
		{"octal IPv4", open, "http://0177.0.0.1/", returnurl.ErrMalformed},
		{"IPv6 zone", open, "http://[fe80::1%25eth0]/", returnurl.ErrMalformed},
		{"IPv4 in brackets", open, "http://[127.0.0.1]/", returnurl.ErrMalformed},
		{"http to a public host", strict, "http://good.com/", returnurl.ErrInsecure},
		// The whole origin is compared: scheme, host and port.
		{"port not listed", strict, "https://good.com:9443/", returnurl.ErrNotAllowed},
		{"port of another entry's host", returnurl.Policy{AllowedDomains: []string{"good.com", "other.com:8443"}}, "https://good.com:8443/", returnurl.ErrNotAllowed},
		{"http without https policy, entry without scheme", returnurl.Policy{AllowedDomains: []string{"good.com"}}, "http://good.com/", returnurl.ErrNotAllowed},
		{"https against an http entry", returnurl.Policy{AllowedDomains: []string{"http://good.com"}}, "https://good.com/", returnurl.ErrNotAllowed},
		{"wildcard two levels down", strict, "https://x.y.apps.example.org/", returnurl.ErrNotAllowed},
		{"wildcard base itself", strict, "https://apps.example.org/", returnurl.ErrNotAllowed},
		{"deep wildcard base itself", strict, "https://deep.example.org/", returnurl.ErrNotAllowed},
		{"http to a private IP", strict, "http://10.1.2.3/", returnurl.ErrInsecure},
		{"http to localhost look-alike", returnurl.Policy{RequireHTTPS: true}, "http://localhost.evil.com/", returnurl.ErrInsecure},
		{"suffix domain", strict, "https://good.com.evil.com/", returnurl.ErrNotAllowed},
		{"prefix glued", strict, "https://evilgood.com/", returnurl.ErrNotAllowed},
		{"subdomain of exact entry", strict, "https://a.good.com/", returnurl.ErrNotAllowed},
		{"wildcard base itself", strict, "https://apps.example.org/", returnurl.ErrNotAllowed},
		{"wildcard glued", strict, "https://evilapps.example.org/", returnurl.ErrNotAllowed},
		{"wildcard suffix attack", strict, "https://a.apps.example.org.evil.com/", returnurl.ErrNotAllowed},
		{"cyrillic look-alike", strict, "https://gооd.com/", returnurl.ErrNotAllowed},
		{"punycode look-alike", strict, "https://xn--gd-fmca.com/", returnurl.ErrNotAllowed},
		{"unlisted IP", strict, "https://10.1.2.4/", returnurl.ErrNotAllowed},
		{"IPv4-mapped form of a listed IP", strict, "https://[::ffff:10.1.2.3]/", returnurl.ErrNotAllowed},
		{"unlisted loopback", strict, "http://127.0.0.2/", returnurl.ErrNotAllowed},
		{"localhost not listed", strict, "http://localhost/", returnurl.ErrNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := tc.policy.Check(tc.raw)
			if err == nil {
				t.Fatalf("Check(%q) accepted %q", tc.raw, u)
			}
			if u != nil {
				t.Fatal("URL returned with an error")
			}
			if !errors.Is(err, tc.kind) {
				t.Fatalf("Check(%q) = %v, want kind %v", tc.raw, err, tc.kind)
			}
			var e *returnurl.Error
			if !errors.As(err, &e) || e.Reason == "" {
				t.Fatalf("error %T has no reason", err)
			}
		})
	}
}

// The reason is shown to API callers; it must never carry path, query or
// credentials from the input.
func TestErrorsQuoteAtMostTheHost(t *testing.T) {
	secretish := "s3cr3t-marker"
	for _, raw := range []string{
		"https://" + secretish + ":pw@evil.com/",
		"https://evil.com/" + secretish + "?t=" + secretish,
		"http://evil.com/?token=" + secretish,
		"javascript:" + secretish,
		"https://evil.com/" + secretish + "#" + secretish,
		"https://evil.com/\\" + secretish,
	} {
		_, err := strict.Check(raw)
		if err == nil {
			t.Fatalf("accepted %q", raw)
		}
		if strings.Contains(err.Error(), secretish) {
			t.Fatalf("error %q quotes the input", err)
		}
	}
	_, err := strict.Check("https://EVIL.com./x")
	if err == nil || !strings.Contains(err.Error(), "origin https://evil.com is not") {
		t.Fatalf("want the normalized host named, got %v", err)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name    string
		domains []string
		bad     []string
	}{
		{"good entries", []string{"good.com", "*.good.com", "**.good.com", "bücher.de", "127.0.0.1", "[::1]", "::1", " spaced.com ",
			"https://good.com", "HTTP://good.com:8080", "good.com:443", "good.com:*", "[::1]:3000", "127.0.0.1:3000"}, nil},
		{"url with a path", []string{"good.com", "https://good.com/cb"}, []string{"entry 2"}},
		{"other scheme", []string{"ftp://good.com"}, []string{"entry 1"}},
		{"bad port", []string{"good.com:0", "good.com:65536", "good.com:x", "good.com:080", "::1:80"}, []string{"entry 1", "entry 2", "entry 3", "entry 4"}},
		{"deep tld wildcard", []string{"**.com"}, []string{"entry 1 is a wildcard"}},
		{"bare star", []string{"*"}, []string{"entry 1"}},
		{"tld wildcard", []string{"*.com"}, []string{"entry 1 is a wildcard"}},
		{"wildcard over IP", []string{"*.1.2.3.4"}, []string{"entry 1"}},
		{"empty", []string{""}, []string{"entry 1"}},
		{"several", []string{"ok.com", "a b", "*.org"}, []string{"entry 2", "entry 3"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := returnurl.Policy{AllowedDomains: tc.domains}.Validate()
			if len(tc.bad) == 0 {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, want := range tc.bad {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("missing %q in %v", want, err)
				}
			}
		})
	}
}

// An invalid entry never matches anything, in particular not by accident
// through its malformed suffix.
func TestInvalidEntriesNeverMatch(t *testing.T) {
	p := returnurl.Policy{AllowedDomains: []string{"https://good.com/", "*", "good.com:0", "ftp://good.com", "good.com@x"}}
	for _, raw := range []string{"https://good.com/", "https://x.good.com/", "https://com/"} {
		if _, err := p.Check(raw); !errors.Is(err, returnurl.ErrNotAllowed) {
			t.Errorf("Check(%q) = %v, want ErrNotAllowed", raw, err)
		}
	}
}

func ExamplePolicy_Check() {
	p := returnurl.Policy{AllowedDomains: []string{"*.example.com"}, RequireHTTPS: true}
	u, err := p.Check("HTTPS://App.Example.COM./done?step=2")
	fmt.Println(u, err)
	_, err = p.Check("https://app.example.com.evil.net/done")
	fmt.Println(err)
	// Output:
	// https://app.example.com/done?step=2 <nil>
	// return_url origin https://app.example.com.evil.net is not in the allowed domains
}
