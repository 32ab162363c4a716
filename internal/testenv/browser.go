package testenv

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// Browser is an HTTP client with a cookie jar that follows redirects, like
// a person's browser without JavaScript.
type Browser struct {
	Client *http.Client
	t      testing.TB
}

// NewBrowser returns a browser with an empty cookie jar.
func NewBrowser(t testing.TB) *Browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Browser{Client: &http.Client{Jar: jar}, t: t}
}

// Get fetches u following redirects and returns the final URL and body.
func (b *Browser) Get(u string) (*url.URL, string, int) {
	b.t.Helper()
	resp, err := b.Client.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", redact(u), err)
	}
	return finish(b.t, resp)
}

// PostForm posts values to u following redirects.
func (b *Browser) PostForm(u string, v url.Values) (*url.URL, string, int) {
	b.t.Helper()
	resp, err := b.Client.PostForm(u, v)
	if err != nil {
		b.t.Fatalf("POST %s: %v", redact(u), err)
	}
	return finish(b.t, resp)
}

func finish(t testing.TB, resp *http.Response) (*url.URL, string, int) {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.Request.URL, string(body), resp.StatusCode
}

func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

var (
	formRE   = regexp.MustCompile(`(?is)<form[^>]*action="([^"]*)"`)
	hiddenRE = regexp.MustCompile(`(?is)<input[^>]*type="hidden"[^>]*>`)
	nameRE   = regexp.MustCompile(`name="([^"]*)"`)
	valueRE  = regexp.MustCompile(`value="([^"]*)"`)
)

// Form is the first HTML form of a page: its absolute action URL and its
// hidden fields.
func Form(page *url.URL, body string) (string, url.Values, error) {
	m := formRE.FindStringSubmatch(body)
	if m == nil {
		return "", nil, fmt.Errorf("no form on page %s", page.Path)
	}
	action, err := page.Parse(htmlUnescape(m[1]))
	if err != nil {
		return "", nil, err
	}
	v := url.Values{}
	for _, in := range hiddenRE.FindAllString(body, -1) {
		n, val := nameRE.FindStringSubmatch(in), valueRE.FindStringSubmatch(in)
		if n != nil {
			value := ""
			if val != nil {
				value = htmlUnescape(val[1])
			}
			v.Set(n[1], value)
		}
	}
	return action.String(), v, nil
}

func htmlUnescape(s string) string {
	r := strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'", "&quot;", `"`)
	return r.Replace(s)
}

// LoginAtOP completes the example OP's login form on page as its first
// user.
func (o *OP) LoginAtOP(b *Browser, page *url.URL, body string) (*url.URL, string, int) {
	b.t.Helper()
	return o.LoginAs(b, page, body, o.Username)
}

// SecondUser is another account of the example OP, for tests that need two
// identities.
const SecondUser = "test-user2"

// LoginAs completes the example OP's login form as username.
func (o *OP) LoginAs(b *Browser, page *url.URL, body, username string) (*url.URL, string, int) {
	b.t.Helper()
	action, v, err := Form(page, body)
	if err != nil {
		b.t.Fatalf("OP login page: %v (status page %s)", err, page)
	}
	v.Set("username", username)
	v.Set("password", o.Password)
	return b.PostForm(action, v)
}
