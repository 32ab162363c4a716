package demoprovider

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/html"
)

const (
	testClientID     = "dromos-dev"
	testClientSecret = "s3cret: with+odd%chars"
	testVerifier     = "test-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
	testState        = "state-abc"
	testNonce        = "nonce-xyz"
)

// testKey is generated once: 2048-bit key generation is slow under -race.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func challengeOf(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// catcher stands in for the broker's callback: it records every query it
// receives.
type catcher struct {
	mu      sync.Mutex
	queries []url.Values
}

func (c *catcher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.queries = append(c.queries, r.URL.Query())
	c.mu.Unlock()
	_, _ = io.WriteString(w, "ok")
}

func (c *catcher) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queries)
}

func (c *catcher) last(t testing.TB) url.Values {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queries) == 0 {
		t.Fatal("the redirect URI was never reached")
	}
	return c.queries[len(c.queries)-1]
}

type env struct {
	p           *Provider
	opts        Options
	handler     atomic.Pointer[http.Handler]
	issuer      string
	redirectURI string
	clock       *testClock
	cb          *catcher
	browser     *http.Client // follows redirects, like a browser
	raw         *http.Client // does not
}

// newEnv serves a provider at <server>/demo on loopback, mounted the way
// the doc comment of Handler says, with a callback server on another port.
func newEnv(t testing.TB, mod func(*Options)) *env {
	t.Helper()
	cb := &catcher{}
	cbSrv := httptest.NewServer(cb)
	t.Cleanup(cbSrv.Close)

	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	clock := newTestClock()
	opts := Options{
		Issuer:       srv.URL + "/demo",
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		RedirectURIs: []string{cbSrv.URL + "/auth/callback"},
		SigningKey:   testKey(),
		Now:          clock.Now,
	}
	if mod != nil {
		mod(&opts)
	}
	p, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e := &env{
		p:           p,
		opts:        opts,
		issuer:      opts.Issuer,
		redirectURI: opts.RedirectURIs[0],
		clock:       clock,
		cb:          cb,
		browser:     srv.Client(),
	}
	e.mount(p)
	mux.Handle("/demo/", http.StripPrefix("/demo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*e.handler.Load()).ServeHTTP(w, r)
	})))

	// srv.Client returns one shared client; the raw one needs its own.
	raw := &http.Client{
		Transport:     srv.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	e.raw = raw
	return e
}

// mount makes p the provider behind the issuer URL, as a restart of the
// process with the same configuration would.
func (e *env) mount(p *Provider) {
	h := p.Handler()
	e.p = p
	e.handler.Store(&h)
}

// authParams is a valid authorization request for scope.
func (e *env) authParams(scope string) url.Values {
	return url.Values{
		"client_id":             {testClientID},
		"redirect_uri":          {e.redirectURI},
		"response_type":         {"code"},
		"scope":                 {scope},
		"state":                 {testState},
		"nonce":                 {testNonce},
		"code_challenge":        {challengeOf(testVerifier)},
		"code_challenge_method": {"S256"},
	}
}

// consentForm is what a browser finds on the consent page.
type consentForm struct {
	method, action string
	fields         url.Values // hidden and text inputs, with their values
	decisions      []string   // values of submit buttons named decision
	scopes         []string   // <code> items of the scope list
	title          string
	body           string
}

func (e *env) openConsent(t testing.TB, q url.Values) consentForm {
	t.Helper()
	resp, err := e.browser.Get(e.issuer + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("consent page: status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("consent page Content-Type = %q", ct)
	}
	return parseConsent(t, string(body))
}

func parseConsent(t testing.TB, body string) consentForm {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse consent page: %v", err)
	}
	f := consentForm{fields: url.Values{}, body: body}
	var inList bool
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			attr := func(k string) string {
				for _, a := range n.Attr {
					if a.Key == k {
						return a.Val
					}
				}
				return ""
			}
			switch n.Data {
			case "title":
				if n.FirstChild != nil {
					f.title = n.FirstChild.Data
				}
			case "form":
				f.method, f.action = attr("method"), attr("action")
			case "input":
				f.fields.Set(attr("name"), attr("value"))
			case "button":
				if attr("name") == "decision" && attr("type") == "submit" {
					f.decisions = append(f.decisions, attr("value"))
				}
			case "ul":
				inList = true
				defer func() { inList = false }()
			case "code":
				if inList && n.FirstChild != nil {
					f.scopes = append(f.scopes, n.FirstChild.Data)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return f
}

// submit posts the consent form as a browser would, following the redirect.
func (e *env) submit(t testing.TB, f consentForm, decision, username string) *http.Response {
	t.Helper()
	data := url.Values{}
	for k, vs := range f.fields {
		data[k] = vs
	}
	data.Set("username", username)
	data.Set("decision", decision)
	resp, err := e.browser.PostForm(f.action, data)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// login runs the browser half of the flow and returns the code.
func (e *env) login(t testing.TB, scope, username string) string {
	t.Helper()
	f := e.openConsent(t, e.authParams(scope))
	resp := e.submit(t, f, "approve", username)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("approve: landed with status %d", resp.StatusCode)
	}
	q := e.cb.last(t)
	if q.Get("code") == "" {
		t.Fatalf("no code in callback query %v", q)
	}
	return q.Get("code")
}

type authStyle int

const (
	authBasic authStyle = iota
	authPost
	authNone
)

// tokenCall is the result of a token or revocation request.
type tokenCall struct {
	status int
	header http.Header
	body   map[string]any
}

func (c tokenCall) str(k string) string {
	s, _ := c.body[k].(string)
	return s
}

func (e *env) post(t testing.TB, path string, form url.Values, style authStyle, secret string) tokenCall {
	t.Helper()
	form = cloneValues(form)
	req, err := http.NewRequest(http.MethodPost, e.issuer+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	switch style {
	case authBasic:
		req.SetBasicAuth(url.QueryEscape(testClientID), url.QueryEscape(secret))
	case authPost:
		form.Set("client_id", testClientID)
		form.Set("client_secret", secret)
	}
	req.Body = io.NopCloser(strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := e.raw.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	call := tokenCall{status: resp.StatusCode, header: resp.Header}
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &call.body); err != nil {
			t.Fatalf("%s: body is not JSON: %q", path, b)
		}
	}
	return call
}

func (e *env) exchange(t testing.TB, code, verifier string) tokenCall {
	t.Helper()
	return e.post(t, "/token", url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"code_verifier": {verifier},
		"redirect_uri":  {e.redirectURI},
	}, authBasic, testClientSecret)
}

func (e *env) refresh(t testing.TB, refreshToken string) tokenCall {
	t.Helper()
	return e.post(t, "/token", url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
	}, authBasic, testClientSecret)
}

func (e *env) revoke(t testing.TB, token string) tokenCall {
	t.Helper()
	return e.post(t, "/revoke", url.Values{"token": {token}}, authBasic, testClientSecret)
}

// userinfo calls the userinfo endpoint with a bearer token ("" for none).
func (e *env) userinfo(t testing.TB, token string) tokenCall {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.raw.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	call := tokenCall{status: resp.StatusCode, header: resp.Header}
	if err := json.NewDecoder(resp.Body).Decode(&call.body); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("userinfo body: %v", err)
	}
	return call
}

// mustTokens runs the whole flow and returns a successful token response.
func (e *env) mustTokens(t testing.TB, scope, username string) tokenCall {
	t.Helper()
	call := e.exchange(t, e.login(t, scope, username), testVerifier)
	if call.status != http.StatusOK {
		t.Fatalf("exchange: status %d body %v", call.status, call.body)
	}
	return call
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// forTest mints an access token for the demo user directly, as a forger
// holding this provider's configuration could.
func (p *Provider) forTest(t testing.TB, scope string) string {
	t.Helper()
	now := p.now()
	scopes := strings.Fields(scope)
	resp, err := p.mint(grant{username: "demo", scopes: scopes, authTime: now}, scopes, "forged-jti", "", now)
	if err != nil {
		t.Fatal(err)
	}
	return resp.AccessToken
}
