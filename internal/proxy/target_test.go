package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/provider"
)

func testTarget(t *testing.T) Target {
	t.Helper()
	tg, err := Resolve("acme", API{BaseURLs: []string{"https://api.acme.test/v1", "https://upload.acme.test"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestURLStaysUnderBase(t *testing.T) {
	tg := testTarget(t)
	for _, tc := range []struct {
		name, base, path, query string
		want                    string // the upstream URL, or "" when refused
		code                    string
	}{
		{"plain", "", "users/me", "", "https://api.acme.test/v1/users/me", ""},
		{"query kept as sent", "", "search", "q=a%20b&x=1", "https://api.acme.test/v1/search?q=a%20b&x=1", ""},
		{"escaped segment kept", "", "files/a%20b.txt", "", "https://api.acme.test/v1/files/a%20b.txt", ""},
		{"trailing slash", "", "users/", "", "https://api.acme.test/v1/users/", ""},
		{"the base itself", "", "", "", "https://api.acme.test/v1/", ""},
		{"second base", "1", "upload", "", "https://upload.acme.test/upload", ""},
		{"dot-dot", "", "../admin", "", "", CodePathRefused},
		{"dot-dot deeper", "", "users/../../admin", "", "", CodePathRefused},
		{"encoded dot-dot", "", "%2e%2e/admin", "", "", CodePathRefused},
		{"mixed-case encoded dot-dot", "", "users/%2E%2e/%2e%2E/admin", "", "", CodePathRefused},
		{"encoded slash", "", "users%2f..%2fadmin", "", "", CodePathRefused},
		{"encoded slash alone", "", "a%2Fb", "", "", CodePathRefused},
		{"encoded backslash", "", "a%5cb", "", "", CodePathRefused},
		{"absolute URL", "", "https://evil.test/x", "", "", CodePathRefused},
		{"absolute URL one slash", "", "https:/evil.test/x", "", "", CodePathRefused},
		{"scheme-relative", "", "/evil.test/x", "", "", CodePathRefused},
		{"userinfo trick", "", "@evil.test/x", "", "https://api.acme.test/v1/@evil.test/x", ""},
		{"control character", "", "a%0Ab", "", "", CodePathRefused},
		{"malformed escape", "", "a%zz", "", "", CodePathRefused},
		{"base out of range", "2", "x", "", "", httpapi.CodeBadRequest},
		{"base not a number", "x", "x", "", "", httpapi.CodeBadRequest},
		{"base with leading zero", "01", "x", "", "", httpapi.CodeBadRequest},
		{"space in query", "", "x", "a=b c", "", CodePathRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := tg.URL(tc.base, tc.path, tc.query)
			if tc.code != "" {
				e, ok := httpapi.As(err)
				if !ok || e.Code != tc.code {
					t.Fatalf("got %v, %v; want code %s", u, err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.String() != tc.want || u.User != nil {
				t.Fatalf("got %s, want %s", u, tc.want)
			}
			if !strings.HasPrefix(u.String(), tg.Bases()[0]) && !strings.HasPrefix(u.String(), tg.Bases()[1]) {
				t.Fatalf("%s is not under a base", u)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	sf := API{BaseURLProviderData: "instance_url", BaseURLs: []string{"https://login.salesforce.com"}}
	tg, err := Resolve("salesforce", sf, map[string]string{"instance_url": "https://acme.my.salesforce.com/"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tg.Bases(), " "); got != "https://acme.my.salesforce.com https://login.salesforce.com" {
		t.Fatalf("bases %s", got)
	}
	for _, bad := range []string{"https://u:p@acme.test", "https://acme.test/path", "javascript:alert(1)", "https://acme.test?x"} {
		if _, err := Resolve("salesforce", sf, map[string]string{"instance_url": bad}); err == nil {
			t.Fatalf("provider data %q accepted as an API base", bad)
		}
	}
	_, err = Resolve("plain", API{}, nil)
	if e, ok := httpapi.As(err); !ok || e.Status != http.StatusConflict || e.Code != CodeNotConfigured {
		t.Fatalf("no bases: %v", err)
	}
	shop, err := Resolve("shopify", API{BaseURLs: []string{"https://s.myshopify.com/admin/api"},
		Auth: &provider.APIAuth{Header: "X-Shopify-Access-Token", Headers: map[string]string{"X-Version": "1"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if shop.header != "X-Shopify-Access-Token" || shop.prefix != "" || shop.constant.Get("X-Version") != "1" {
		t.Fatalf("auth %q %q %v", shop.header, shop.prefix, shop.constant)
	}
}

func FuzzURL(f *testing.F) {
	for _, s := range []string{"users/me", "../x", "%2e%2e/x", "a%2fb", "https://e.test/", "a//b"} {
		f.Add(s)
	}
	tg, _ := Resolve("acme", API{BaseURLs: []string{"https://api.acme.test/v1"}}, nil)
	f.Fuzz(func(t *testing.T, p string) {
		u, err := tg.URL("", p, "")
		if err != nil {
			return
		}
		if u.Host != "api.acme.test" || u.User != nil || !strings.HasPrefix(u.Path, "/v1/") {
			t.Fatalf("%q escaped the base: %s", p, u)
		}
		for _, seg := range strings.Split(u.Path, "/")[1:] {
			if seg == ".." || seg == "." {
				t.Fatalf("%q gave a dot segment: %s", p, u)
			}
		}
	})
}
