package demoprovider

import (
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestConsentPage(t *testing.T) {
	e := newEnv(t, nil)
	f := e.openConsent(t, e.authParams("openid email demo.read"))

	if f.title != "Dromos demo provider" {
		t.Errorf("title = %q", f.title)
	}
	if !strings.HasPrefix(strings.ToLower(f.body), "<!doctype html>") {
		t.Error("page does not start with <!doctype html>")
	}
	if strings.Contains(strings.ToLower(f.body), "<script") {
		t.Error("page contains a script")
	}
	if f.method != "post" || f.action != e.issuer+"/authorize" {
		t.Errorf("form method %q action %q", f.method, f.action)
	}
	if got := f.fields.Get("username"); got != "demo" {
		t.Errorf("username prefilled with %q, want demo", got)
	}
	if len(f.fields.Get("request_id")) < 40 {
		t.Errorf("request_id %q looks too short to be random", f.fields.Get("request_id"))
	}
	if !reflect.DeepEqual(f.decisions, []string{"approve", "deny"}) {
		t.Errorf("decision buttons = %v", f.decisions)
	}
	if want := []string{"openid", "email", "demo.read"}; !reflect.DeepEqual(f.scopes, want) {
		t.Errorf("listed scopes = %v, want %v", f.scopes, want)
	}
	if !strings.Contains(f.body, testClientID) {
		t.Error("page does not name the client")
	}
	if n := e.p.Stats().ConsentPagesShown; n != 1 {
		t.Errorf("ConsentPagesShown = %d", n)
	}
}

func TestApproveRedirectsWithCodeStateAndIss(t *testing.T) {
	e := newEnv(t, nil)
	f := e.openConsent(t, e.authParams("openid"))
	resp := e.submit(t, f, "approve", "demo")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/auth/callback" {
		t.Fatalf("ended at %s with %d", resp.Request.URL, resp.StatusCode)
	}
	q := e.cb.last(t)
	if q.Get("code") == "" || q.Get("state") != testState || q.Get("iss") != e.issuer {
		t.Errorf("callback query = %v", q)
	}
	if q.Has("error") {
		t.Errorf("unexpected error in %v", q)
	}
}

func TestDenyRedirectsAccessDenied(t *testing.T) {
	e := newEnv(t, nil)
	f := e.openConsent(t, e.authParams("openid"))
	e.submit(t, f, "deny", "demo")
	q := e.cb.last(t)
	if q.Get("error") != "access_denied" || q.Get("state") != testState || q.Get("iss") != e.issuer {
		t.Errorf("callback query = %v", q)
	}
	if q.Has("code") {
		t.Error("deny returned a code")
	}
	if s := e.p.Stats(); s.Denials != 1 || s.Approvals != 0 {
		t.Errorf("stats = %+v", s)
	}
	// The request is answered: approving it afterwards must not yield a code.
	resp := e.submit(t, f, "approve", "demo")
	if resp.StatusCode != http.StatusBadRequest || e.cb.count() != 1 {
		t.Errorf("second answer: status %d, callback hits %d", resp.StatusCode, e.cb.count())
	}
}

// TestAuthorizeNeverRedirectsToUntrustedURI shows the open-redirect attack:
// each request must end on an error page at the provider, and the callback
// server must never be contacted.
func TestAuthorizeNeverRedirectsToUntrustedURI(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name string
		mod  func(url.Values)
	}{
		{"missing client_id", func(q url.Values) { q.Del("client_id") }},
		{"unknown client_id", func(q url.Values) { q.Set("client_id", "evil") }},
		{"repeated client_id", func(q url.Values) { q.Add("client_id", testClientID) }},
		{"missing redirect_uri", func(q url.Values) { q.Del("redirect_uri") }},
		{"unregistered redirect_uri", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }},
		{"redirect_uri with extra path", func(q url.Values) { q.Set("redirect_uri", e.redirectURI+"/x") }},
		{"redirect_uri with extra query", func(q url.Values) { q.Set("redirect_uri", e.redirectURI+"?x=1") }},
		{"repeated redirect_uri", func(q url.Values) { q.Add("redirect_uri", e.redirectURI) }},
		{"bad redirect_uri and bad response_type", func(q url.Values) {
			q.Set("redirect_uri", "https://evil.example/cb")
			q.Set("response_type", "token")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := e.authParams("openid")
			tc.mod(q)
			resp, err := e.raw.Get(e.issuer + "/authorize?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Errorf("redirected to %q", loc)
			}
			if !strings.Contains(string(body), "<title>Dromos demo provider</title>") {
				t.Errorf("not the HTML error page: %.200s", body)
			}
			if strings.Contains(string(body), `name="request_id"`) {
				t.Error("an error page offers a consent form")
			}
		})
	}
	if e.cb.count() != 0 {
		t.Errorf("callback reached %d times", e.cb.count())
	}
	if n := e.p.Stats().ConsentPagesShown; n != 0 {
		t.Errorf("ConsentPagesShown = %d", n)
	}
}

func TestAuthorizeErrorsRedirectToClient(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name      string
		mod       func(url.Values)
		wantError string
		wantState string
	}{
		{"missing response_type", func(q url.Values) { q.Del("response_type") }, "invalid_request", testState},
		{"implicit flow", func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type", testState},
		{"missing code_challenge", func(q url.Values) { q.Del("code_challenge") }, "invalid_request", testState},
		{"missing challenge method", func(q url.Values) { q.Del("code_challenge_method") }, "invalid_request", testState},
		{"plain PKCE", func(q url.Values) {
			q.Set("code_challenge_method", "plain")
			q.Set("code_challenge", testVerifier)
		}, "invalid_request", testState},
		{"short challenge", func(q url.Values) { q.Set("code_challenge", "abc") }, "invalid_request", testState},
		{"challenge with padding", func(q url.Values) { q.Set("code_challenge", challengeOf(testVerifier)[:42]+"=") }, "invalid_request", testState},
		{"missing scope", func(q url.Values) { q.Del("scope") }, "invalid_scope", testState},
		{"unknown scope", func(q url.Values) { q.Set("scope", "openid admin") }, "invalid_scope", testState},
		{"repeated scope parameter", func(q url.Values) { q.Add("scope", "email") }, "invalid_request", testState},
		{"repeated state", func(q url.Values) { q.Add("state", "other") }, "invalid_request", ""},
		{"fragment response mode", func(q url.Values) { q.Set("response_mode", "fragment") }, "invalid_request", testState},
		{"prompt none", func(q url.Values) { q.Set("prompt", "none") }, "consent_required", testState},
		{"request object", func(q url.Values) { q.Set("request", "eyJ") }, "request_not_supported", testState},
		{"no state", func(q url.Values) { q.Del("state"); q.Del("code_challenge") }, "invalid_request", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := e.authParams("openid")
			tc.mod(q)
			resp, err := e.raw.Get(e.issuer + "/authorize?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("status %d, want 302", resp.StatusCode)
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			got := loc.Query()
			loc.RawQuery = ""
			if loc.String() != e.redirectURI {
				t.Errorf("redirected to %s, want the registered URI", loc)
			}
			if got.Get("error") != tc.wantError || got.Get("state") != tc.wantState || got.Get("iss") != e.issuer {
				t.Errorf("query = %v, want error=%s state=%q iss", got, tc.wantError, tc.wantState)
			}
			if got.Has("code") {
				t.Error("an error redirect carries a code")
			}
		})
	}
}

func TestAuthorizeKeepsRedirectURIQuery(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RedirectURIs = append(o.RedirectURIs, o.RedirectURIs[0]+"?tenant=a") })
	q := e.authParams("openid")
	q.Set("redirect_uri", e.redirectURI+"?tenant=a")
	f := e.openConsent(t, q)
	e.submit(t, f, "approve", "demo")
	got := e.cb.last(t)
	if got.Get("tenant") != "a" || got.Get("code") == "" {
		t.Errorf("callback query = %v", got)
	}
}

func TestAuthorizeAcceptsFormPost(t *testing.T) {
	e := newEnv(t, nil)
	resp, err := e.raw.PostForm(e.issuer+"/authorize", e.authParams("openid"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	f := parseConsent(t, string(body))
	if f.fields.Get("request_id") == "" {
		t.Error("no consent form")
	}
}

func TestConsentRejectsUnknownUsedOrExpiredRequest(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, e *env, f *consentForm)
	}{
		{"unknown id", func(_ *testing.T, _ *env, f *consentForm) { f.fields.Set("request_id", "forged") }},
		{"empty id", func(_ *testing.T, _ *env, f *consentForm) { f.fields.Set("request_id", "") }},
		{"used id", func(t *testing.T, e *env, f *consentForm) { e.submit(t, *f, "approve", "demo") }},
		{"expired id", func(_ *testing.T, e *env, _ *consentForm) { e.clock.Advance(DefaultCodeTTL + pendingGrace) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			f := e.openConsent(t, e.authParams("openid"))
			tc.tamper(t, e, &f)
			before := e.cb.count()
			resp := e.submit(t, f, "approve", "demo")
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
			if resp.Request.URL.Path != "/demo/authorize" || e.cb.count() != before {
				t.Error("the browser was sent to the client")
			}
		})
	}
}

func TestConsentInvalidUsernameKeepsRequest(t *testing.T) {
	e := newEnv(t, nil)
	f := e.openConsent(t, e.authParams("openid"))
	for _, bad := range []string{"", "-lead", "has space", "ünï", strings.Repeat("a", 65), "a@b"} {
		resp := e.submit(t, f, "approve", bad)
		if resp.StatusCode != http.StatusBadRequest || e.cb.count() != 0 {
			t.Fatalf("username %q: status %d, callback hits %d", bad, resp.StatusCode, e.cb.count())
		}
	}
	e.clock.Advance(time.Minute)
	code := e.submit(t, f, "approve", "Alice.B")
	if code.StatusCode != http.StatusOK || e.cb.last(t).Get("code") == "" {
		t.Fatal("a corrected username did not complete the request")
	}
}

func TestConsentUnknownDecision(t *testing.T) {
	e := newEnv(t, nil)
	f := e.openConsent(t, e.authParams("openid"))
	if resp := e.submit(t, f, "maybe", "demo"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The request survives a malformed answer.
	e.submit(t, f, "approve", "demo")
	if e.cb.last(t).Get("code") == "" {
		t.Fatal("no code after a valid answer")
	}
}
