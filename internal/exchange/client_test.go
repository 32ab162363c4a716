package exchange_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/exchange"
)

func TestExchangeCodeSendsForm(t *testing.T) {
	grant := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {testCode},
		"redirect_uri":  {testRedirect},
		"code_verifier": {testVerifier},
	}
	with := func(extra url.Values) url.Values {
		out := url.Values{}
		for k, v := range grant {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name      string
		method    exchange.AuthMethod
		wantBasic string // decoded Basic credential, "" when no header
		wantForm  url.Values
	}{
		{"client_secret_basic", exchange.AuthBasic, testBasicRaw, grant},
		{"client_secret_post", exchange.AuthPost, "", with(url.Values{"client_id": {testClientID}, "client_secret": {testSecret}})},
		{"none", exchange.AuthNone, "", with(url.Values{"client_id": {testClientID}})},
		{"auto starts with basic", exchange.AuthAuto, testBasicRaw, grant},
		{"empty means auto", "", testBasicRaw, grant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProvider(t, answerJSON(200, tokenBody))
			c := newClient(exchange.Options{})

			tok, err := c.ExchangeCode(context.Background(), endpoint(p.URL+"/token", tt.method), testCode, testVerifier, testRedirect)
			if err != nil {
				t.Fatalf("ExchangeCode: %v", err)
			}
			want := &exchange.Token{AccessToken: testAccess, TokenType: "Bearer", RefreshToken: testRefresh,
				IDToken: testIDToken, ExpiresIn: 3600, Expiry: after(3600)}
			if !reflect.DeepEqual(tok, want) {
				t.Fatalf("token = %#v, want %#v", *tok, *want)
			}

			reqs := p.requests()
			if len(reqs) != 1 {
				t.Fatalf("provider got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodPost || r.RawQuery != "" {
				t.Errorf("request = %s with query %q, want POST without query", r.Method, r.RawQuery)
			}
			if got := r.Header.Get("Accept"); got != "application/json" {
				t.Errorf("Accept = %q", got)
			}
			if got := r.Header.Get("Content-Type"); got != "application/x-www-form-urlencoded" {
				t.Errorf("Content-Type = %q", got)
			}
			if got := r.basicRaw(); got != tt.wantBasic {
				t.Errorf("Basic credential = %q, want %q", got, tt.wantBasic)
			}
			if tt.wantBasic != "" && !r.basicOK() {
				t.Errorf("Basic credential does not decode to the client id and secret")
			}
			if !reflect.DeepEqual(r.Form, tt.wantForm) {
				t.Errorf("form = %v, want %v", r.Form, tt.wantForm)
			}
		})
	}
}

func TestExtraHeaders(t *testing.T) {
	p := newProvider(t, answerJSON(200, tokenBody))
	c := newClient(exchange.Options{})
	ep := endpoint(p.URL, exchange.AuthPost)
	ep.ExtraHeaders = map[string]string{
		"Notion-Version": "2022-06-28",
		"accept":         "text/html",
		"Authorization":  "Bearer not-ours",
	}
	if _, err := c.ExchangeCode(context.Background(), ep, testCode, testVerifier, testRedirect); err != nil {
		t.Fatal(err)
	}
	r := p.requests()[0]
	if got := r.Header.Get("Notion-Version"); got != "2022-06-28" {
		t.Errorf("Notion-Version = %q", got)
	}
	if got := r.Header.Values("Accept"); !reflect.DeepEqual(got, []string{"application/json"}) {
		t.Errorf("Accept = %q, extra header replaced ours", got)
	}
	if got := r.Header.Get("Authorization"); got != "" {
		t.Errorf("Authorization = %q sent with client_secret_post", got)
	}
}

func TestInvalidInputSendsNothing(t *testing.T) {
	p := newProvider(t, answerJSON(200, tokenBody))
	good := endpoint(p.URL, exchange.AuthBasic)
	tests := []struct {
		name string
		ep   func() exchange.Endpoint
		code string
	}{
		{"empty code", func() exchange.Endpoint { return good }, ""},
		{"no client id", func() exchange.Endpoint { e := good; e.ClientID = ""; return e }, testCode},
		{"unknown auth method", func() exchange.Endpoint { e := good; e.AuthMethod = "private_key_jwt"; return e }, testCode},
		{"relative token url", func() exchange.Endpoint { e := good; e.TokenURL = "/token"; return e }, testCode},
		{"non-http token url", func() exchange.Endpoint { e := good; e.TokenURL = "file:///etc/passwd"; return e }, testCode},
		{"header with newline", func() exchange.Endpoint {
			e := good
			e.ExtraHeaders = map[string]string{"X-Api-Version": "1\r\nX-Injected: yes"}
			return e
		}, testCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(exchange.Options{})
			_, err := c.ExchangeCode(context.Background(), tt.ep(), tt.code, testVerifier, testRedirect)
			if !errors.Is(err, exchange.ErrInvalidInput) {
				t.Fatalf("error = %v, want ErrInvalidInput", err)
			}
			if n := len(p.requests()); n != 0 {
				t.Fatalf("provider got %d requests", n)
			}
		})
	}
}

func TestAutoAuthFallback(t *testing.T) {
	tests := []struct {
		name        string
		answer      func(http.ResponseWriter, *http.Request, seenRequest)
		method      exchange.AuthMethod
		wantAuths   []string
		wantClass   exchange.Class
		wantLearned exchange.AuthMethod // "" when nothing should be learned
	}{
		{"post-only provider answering 401", acceptOnly("post", 401), exchange.AuthAuto,
			[]string{"basic", "post"}, exchange.ClassNone, exchange.AuthPost},
		{"post-only provider answering 400", acceptOnly("post", 400), exchange.AuthAuto,
			[]string{"basic", "post"}, exchange.ClassNone, exchange.AuthPost},
		{"basic works", acceptOnly("basic", 401), exchange.AuthAuto,
			[]string{"basic"}, exchange.ClassNone, exchange.AuthBasic},
		{"both rejected: one retry only", answerJSON(401, `{"error":"invalid_client"}`), exchange.AuthAuto,
			[]string{"basic", "post"}, exchange.ClassInvalidClient, ""},
		{"invalid_client with 403 is not retried", answerJSON(403, `{"error":"invalid_client"}`), exchange.AuthAuto,
			[]string{"basic"}, exchange.ClassInvalidClient, ""},
		{"invalid_grant is not retried", answerJSON(400, `{"error":"invalid_grant"}`), exchange.AuthAuto,
			[]string{"basic"}, exchange.ClassInvalidGrant, ""},
		{"5xx is not retried", answerJSON(502, `{}`), exchange.AuthAuto,
			[]string{"basic"}, exchange.ClassTransient, ""},
		{"explicit basic never falls back", acceptOnly("post", 401), exchange.AuthBasic,
			[]string{"basic"}, exchange.ClassInvalidClient, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProvider(t, tt.answer)
			c := newClient(exchange.Options{})
			ep := endpoint(p.URL+"/token", tt.method)

			tok, err := c.ExchangeCode(context.Background(), ep, testCode, testVerifier, testRedirect)
			if got := exchange.Classify(err); got != tt.wantClass {
				t.Fatalf("Classify(%v) = %q, want %q", err, got, tt.wantClass)
			}
			if err == nil && tok.AccessToken != testAccess {
				t.Fatalf("AccessToken = %q", tok.AccessToken)
			}
			if got := p.auths(); !reflect.DeepEqual(got, tt.wantAuths) {
				t.Fatalf("auth methods sent = %v, want %v", got, tt.wantAuths)
			}
			for i, r := range p.requests() {
				if r.Form.Get("code") != testCode || r.Form.Get("code_verifier") != testVerifier {
					t.Fatalf("request %d lost the grant parameters: %v", i, r.Form)
				}
			}
			learned, ok := c.LearnedMethod(ep.TokenURL)
			if learned != tt.wantLearned || ok != (tt.wantLearned != "") {
				t.Fatalf("LearnedMethod = %q, %t, want %q", learned, ok, tt.wantLearned)
			}
		})
	}
}

func TestAutoAuthRemembers(t *testing.T) {
	p := newProvider(t, acceptOnly("post", 401))
	revocation := newProvider(t, func(w http.ResponseWriter, _ *http.Request, req seenRequest) {
		if !req.postOK() {
			writeBody(w, 401, "application/json", `{"error":"invalid_client"}`)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	c := newClient(exchange.Options{})
	ep := endpoint(p.URL+"/token", exchange.AuthAuto)
	ctx := context.Background()

	if _, err := c.ExchangeCode(ctx, ep, testCode, testVerifier, testRedirect); err != nil {
		t.Fatalf("ExchangeCode: %v", err)
	}
	if _, err := c.Refresh(ctx, ep, testRefresh, nil); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if got, want := p.auths(), []string{"basic", "post", "post"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("auth methods at the token endpoint = %v, want %v", got, want)
	}
	// Another client has learned nothing: the memory is per Client.
	if _, ok := newClient(exchange.Options{}).LearnedMethod(ep.TokenURL); ok {
		t.Fatal("a fresh client claims to have learned a method")
	}
	// The revocation endpoint of the same provider starts from what worked
	// at its token endpoint.
	if err := c.Revoke(ctx, revocation.URL+"/revoke", ep, testRefresh, "refresh_token"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if got, want := revocation.auths(), []string{"post"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("auth methods at the revocation endpoint = %v, want %v", got, want)
	}
}

func TestAutoAuthConcurrent(t *testing.T) {
	p := newProvider(t, acceptOnly("post", 401))
	c := newClient(exchange.Options{})
	ep := endpoint(p.URL+"/token", exchange.AuthAuto)
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			_, err := c.Refresh(context.Background(), ep, testRefresh, nil)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Refresh: %v", err)
		}
	}
	if m, _ := c.LearnedMethod(ep.TokenURL); m != exchange.AuthPost {
		t.Fatalf("LearnedMethod = %q, want post", m)
	}
	// Each call sends at most one basic attempt and exactly one post.
	n := len(p.requests())
	if n < workers+1 || n > 2*workers {
		t.Fatalf("provider got %d requests for %d calls", n, workers)
	}
}

func TestRefresh(t *testing.T) {
	tests := []struct {
		name        string
		scopes      []string
		body        string
		wantScope   string // "" means no scope parameter
		wantRefresh string
	}{
		{"rotated refresh token, no scopes", nil,
			`{"access_token":"at-2","token_type":"bearer","refresh_token":"rt-rotated"}`, "", "rt-rotated"},
		{"kept refresh token, narrowed scopes", []string{"openid", "email"},
			`{"access_token":"at-2","token_type":"bearer","expires_in":"60"}`, "openid email", testRefresh},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProvider(t, answerJSON(200, tt.body))
			c := newClient(exchange.Options{})
			tok, err := c.Refresh(context.Background(), endpoint(p.URL, exchange.AuthPost), testRefresh, tt.scopes)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if tok.AccessToken != "at-2" || tok.RefreshToken != tt.wantRefresh {
				t.Fatalf("token = %q / %q, want at-2 / %q", tok.AccessToken, tok.RefreshToken, tt.wantRefresh)
			}
			want := url.Values{
				"grant_type":    {"refresh_token"},
				"refresh_token": {testRefresh},
				"client_id":     {testClientID},
				"client_secret": {testSecret},
			}
			if tt.wantScope != "" {
				want.Set("scope", tt.wantScope)
			}
			if got := p.requests()[0].Form; !reflect.DeepEqual(got, want) {
				t.Fatalf("form = %v, want %v", got, want)
			}
		})
	}
}

func TestExchangeErrorClasses(t *testing.T) {
	tests := []struct {
		name      string
		answer    func(http.ResponseWriter, *http.Request, seenRequest)
		wantClass exchange.Class
		wantErr   error
	}{
		{"invalid_grant", answerJSON(400, `{"error":"invalid_grant"}`), exchange.ClassInvalidGrant, nil},
		{"unauthorized_client", answerJSON(400, `{"error":"unauthorized_client"}`), exchange.ClassInvalidClient, nil},
		{"503", answerJSON(503, `{}`), exchange.ClassTransient, nil},
		{"429", answerJSON(429, `{"message":"slow down"}`), exchange.ClassTransient, nil},
		{"temporarily_unavailable in a 200", answerJSON(200, `{"error":"temporarily_unavailable"}`), exchange.ClassTransient, nil},
		{"garbage", func(w http.ResponseWriter, _ *http.Request, _ seenRequest) {
			writeBody(w, 200, "text/html", "<html>login</html>")
		}, exchange.ClassProtocol, exchange.ErrMalformed},
		{"no access token", answerJSON(200, `{"token_type":"bearer"}`), exchange.ClassProtocol, exchange.ErrMissingAccessToken},
		{"bad token type", answerJSON(200, `{"access_token":"a","token_type":"mac"}`), exchange.ClassProtocol, exchange.ErrBadTokenType},
		{"other 4xx", answerJSON(404, `not found`), exchange.ClassProtocol, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProvider(t, tt.answer)
			c := newClient(exchange.Options{})
			tok, err := c.ExchangeCode(context.Background(), endpoint(p.URL, exchange.AuthPost), testCode, testVerifier, testRedirect)
			if err == nil {
				t.Fatalf("ExchangeCode succeeded with %v", tok)
			}
			if got := exchange.Classify(err); got != tt.wantClass {
				t.Fatalf("Classify(%v) = %q, want %q", err, got, tt.wantClass)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestConnectionRefusedIsTransient(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	dead := srv.URL
	srv.Close()
	c := newClient(exchange.Options{})
	_, err := c.ExchangeCode(context.Background(), endpoint(dead, exchange.AuthBasic), testCode, testVerifier, testRedirect)
	if !errors.Is(err, exchange.ErrTransport) || exchange.Classify(err) != exchange.ClassTransient {
		t.Fatalf("error = %v (class %q), want transient ErrTransport", err, exchange.Classify(err))
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var elsewhere atomic.Int32
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				elsewhere.Add(1)
				writeBody(w, 200, "application/json", tokenBody)
			}))
			defer target.Close()
			p := newProvider(t, func(w http.ResponseWriter, r *http.Request, _ seenRequest) {
				http.Redirect(w, r, target.URL+"/token", status)
			})
			c := newClient(exchange.Options{HTTPClient: &http.Client{}})
			ctx := context.Background()

			_, err := c.ExchangeCode(ctx, endpoint(p.URL, exchange.AuthAuto), testCode, testVerifier, testRedirect)
			if !errors.Is(err, exchange.ErrRedirect) || exchange.Classify(err) != exchange.ClassProtocol {
				t.Fatalf("ExchangeCode error = %v, want ErrRedirect", err)
			}
			err = c.Revoke(ctx, p.URL, endpoint(p.URL, exchange.AuthBasic), testAccess, "")
			if !errors.Is(err, exchange.ErrRedirect) {
				t.Fatalf("Revoke error = %v, want ErrRedirect", err)
			}
			if n := elsewhere.Load(); n != 0 {
				t.Fatalf("redirect target got %d requests", n)
			}
			if n := len(p.requests()); n != 2 {
				t.Fatalf("provider got %d requests, want 2 (no auto fallback on a redirect)", n)
			}
		})
	}
}

func TestTimeoutIsTransient(t *testing.T) {
	release := make(chan struct{})
	p := newProvider(t, func(w http.ResponseWriter, r *http.Request, _ seenRequest) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	c := newClient(exchange.Options{Timeout: 50 * time.Millisecond})

	_, err := c.ExchangeCode(context.Background(), endpoint(p.URL, exchange.AuthBasic), testCode, testVerifier, testRedirect)
	if !errors.Is(err, context.DeadlineExceeded) || exchange.Classify(err) != exchange.ClassTransient {
		t.Fatalf("error = %v (class %q), want a transient deadline error", err, exchange.Classify(err))
	}
}

func TestCallerCancellation(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	p := newProvider(t, func(w http.ResponseWriter, r *http.Request, _ seenRequest) {
		close(started)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	c := newClient(exchange.Options{Timeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	_, err := c.Refresh(ctx, endpoint(p.URL, exchange.AuthBasic), testRefresh, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
}

func TestBodyLimit(t *testing.T) {
	const limit = 1024
	prefix := `{"access_token":"a","token_type":"bearer","pad":"`
	exact := prefix + strings.Repeat("x", limit-len(prefix)-2) + `"}`
	if len(exact) != limit {
		t.Fatalf("test body is %d bytes", len(exact))
	}
	over := prefix + strings.Repeat("x", limit) + `"}`
	tests := []struct {
		name    string
		answer  func(http.ResponseWriter, *http.Request, seenRequest)
		wantErr error
	}{
		{"exactly the limit", answerJSON(200, exact), nil},
		{"over the limit with content length", answerJSON(200, over), exchange.ErrBodyTooLarge},
		{"over the limit chunked", func(w http.ResponseWriter, _ *http.Request, _ seenRequest) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(over[:limit/2]))
			w.(http.Flusher).Flush()
			_, _ = w.Write([]byte(over[limit/2:]))
		}, exchange.ErrBodyTooLarge},
		{"error body over the limit", answerJSON(400, `{"error":"invalid_grant","x":"`+strings.Repeat("y", limit)+`"}`), exchange.ErrBodyTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProvider(t, tt.answer)
			c := newClient(exchange.Options{MaxBody: limit})
			tok, err := c.ExchangeCode(context.Background(), endpoint(p.URL, exchange.AuthPost), testCode, testVerifier, testRedirect)
			if tt.wantErr == nil {
				if err != nil || tok.AccessToken != "a" {
					t.Fatalf("ExchangeCode = %v, %v; want success", tok, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || exchange.Classify(err) != exchange.ClassProtocol {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
