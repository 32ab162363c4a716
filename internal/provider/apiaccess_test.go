package provider

import (
	"strings"
	"testing"
)

func TestAPIAccessValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Profile)
		want string // "" for valid
	}{
		{"none", func(*Profile) {}, ""},
		{"bases with paths", func(p *Profile) {
			p.APIBaseURLs = []string{"https://www.googleapis.com/", " https://api.notion.com/v1 ", "http://127.0.0.1:8080/demo"}
		}, ""},
		{"provider data base", func(p *Profile) { p.APIBaseURLProviderData = "instance_url" }, ""},
		{"custom header without prefix", func(p *Profile) {
			p.APIAuth = &APIAuth{Header: "x-shopify-access-token", Headers: map[string]string{"notion-version": "2025-09-03"}}
		}, ""},
		{"ftp base", func(p *Profile) { p.APIBaseURLs = []string{"ftp://api.example.com"} }, "api_base_urls[0] must be an http(s) URL"},
		{"no host", func(p *Profile) { p.APIBaseURLs = []string{"https:///api"} }, "api_base_urls[0] must be an absolute URL"},
		{"userinfo", func(p *Profile) { p.APIBaseURLs = []string{"https://u:p@api.example.com"} }, "must not contain credentials"},
		{"query", func(p *Profile) { p.APIBaseURLs = []string{"https://api.example.com/v1?x=1"} }, "must not have a query"},
		{"dot-dot path", func(p *Profile) { p.APIBaseURLs = []string{"https://api.example.com/v1/../admin"} }, "plain path"},
		{"encoded path", func(p *Profile) { p.APIBaseURLs = []string{"https://api.example.com/v1%2fadmin"} }, "percent-encoding"},
		{"bad provider data name", func(p *Profile) { p.APIBaseURLProviderData = "a b" }, "api_base_url_provider_data"},
		{"host header", func(p *Profile) { p.APIAuth = &APIAuth{Header: "Host"} }, "api_auth.header may not be Host"},
		{"constant authorization", func(p *Profile) {
			p.APIAuth = &APIAuth{Headers: map[string]string{"Authorization": "Basic x"}}
		}, "api_auth.headers may not set Authorization"},
		{"constant token header", func(p *Profile) {
			p.APIAuth = &APIAuth{Header: "X-Token", Headers: map[string]string{"x-token": "v"}}
		}, "api_auth.headers may not set X-Token"},
		{"header value with newline", func(p *Profile) {
			p.APIAuth = &APIAuth{Headers: map[string]string{"X-Version": "1\r\nX-Evil: 1"}}
		}, "the value of X-Version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := validProfile()
			tc.edit(&p)
			p.Normalize()
			err := p.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestAPIAuthTokenHeader(t *testing.T) {
	for _, tc := range []struct {
		name               string
		auth               *APIAuth
		wantName, wantPref string
	}{
		{"nil is bearer", nil, "Authorization", "Bearer "},
		{"only constant headers", &APIAuth{Headers: map[string]string{"Notion-Version": "1"}}, "Authorization", "Bearer "},
		{"other scheme", &APIAuth{Prefix: "token "}, "Authorization", "token "},
		{"own header, bare token", &APIAuth{Header: "x-shopify-access-token"}, "X-Shopify-Access-Token", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, p := tc.auth.TokenHeader()
			if n != tc.wantName || p != tc.wantPref {
				t.Fatalf("got %q %q, want %q %q", n, p, tc.wantName, tc.wantPref)
			}
		})
	}
}

func TestNormalizeAPIBases(t *testing.T) {
	p := validProfile()
	p.APIBaseURLs = []string{"https://api.example.com/", "https://api.example.com", " https://b.example.com/v1/ "}
	p.Normalize()
	if got := strings.Join(p.APIBaseURLs, " "); got != "https://api.example.com https://b.example.com/v1" {
		t.Fatalf("bases %q", got)
	}
}
