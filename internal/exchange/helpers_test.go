package exchange_test

import (
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/secret"
)

// Values sent to providers in these tests. The client id and secret hold the
// characters RFC 6749 §2.3.1 makes us form-encode before Basic encoding.
const (
	testClientID = "my client:1"
	testSecret   = "s3:cr%t+/é"
	testCode     = "code-4f2a9e"
	testVerifier = "verifier-dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	testRedirect = "https://broker.example/auth/callback?x=1"
	testAccess   = "at-91c2d7"
	testRefresh  = "rt-77b1e0"
	testIDToken  = "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.sig-5a5a"

	// testBasicRaw is the decoded Basic credential the RFC asks for, worked
	// out by hand: ' ' → '+', ':' → %3A, '%' → %25, '+' → %2B, '/' → %2F.
	testBasicRaw = "my+client%3A1:s3%3Acr%25t%2B%2F%C3%A9"
)

const tokenBody = `{"access_token":"` + testAccess + `","token_type":"Bearer","expires_in":3600,` +
	`"refresh_token":"` + testRefresh + `","id_token":"` + testIDToken + `"}`

// seenRequest is what the fake provider received.
type seenRequest struct {
	Method   string
	RawQuery string
	Header   http.Header
	Form     url.Values
}

// auth names the client authentication a request used.
func (r seenRequest) auth() string {
	switch {
	case r.Header.Get("Authorization") != "" && r.Form.Has("client_secret"):
		return "both"
	case r.Header.Get("Authorization") != "":
		return "basic"
	case r.Form.Has("client_secret"):
		return "post"
	case r.Form.Has("client_id"):
		return "none"
	default:
		return "absent"
	}
}

// basicRaw returns the base64-decoded Basic credential, or "".
func (r seenRequest) basicRaw() string {
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Basic ")
	if !ok {
		return ""
	}
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return "undecodable"
	}
	return string(raw)
}

// basicOK decodes the credential as a provider following the RFC would.
func (r seenRequest) basicOK() bool {
	id, sec, ok := strings.Cut(r.basicRaw(), ":")
	if !ok {
		return false
	}
	id, err1 := url.QueryUnescape(id)
	sec, err2 := url.QueryUnescape(sec)
	return err1 == nil && err2 == nil && id == testClientID && sec == testSecret
}

func (r seenRequest) postOK() bool {
	return r.Header.Get("Authorization") == "" &&
		r.Form.Get("client_id") == testClientID && r.Form.Get("client_secret") == testSecret
}

// provider is a fake token endpoint on loopback that records every request.
type provider struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

func newProvider(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, req seenRequest)) *provider {
	t.Helper()
	p := &provider{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		req := seenRequest{Method: r.Method, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Form: r.PostForm}
		p.mu.Lock()
		p.seen = append(p.seen, req)
		p.mu.Unlock()
		answer(w, r, req)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *provider) requests() []seenRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]seenRequest(nil), p.seen...)
}

func (p *provider) auths() []string {
	var out []string
	for _, r := range p.requests() {
		out = append(out, r.auth())
	}
	return out
}

func writeBody(w http.ResponseWriter, status int, contentType, body string) {
	if contentType != "" {
		w.Header().Set("Content-Type", contentType)
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func answerJSON(status int, body string) func(http.ResponseWriter, *http.Request, seenRequest) {
	return func(w http.ResponseWriter, _ *http.Request, _ seenRequest) {
		writeBody(w, status, "application/json", body)
	}
}

// acceptOnly answers like a provider that supports one client
// authentication method and calls everything else invalid_client.
func acceptOnly(method string, status int) func(http.ResponseWriter, *http.Request, seenRequest) {
	return func(w http.ResponseWriter, _ *http.Request, req seenRequest) {
		ok := (method == "basic" && req.basicOK() && !req.Form.Has("client_secret")) ||
			(method == "post" && req.postOK())
		if !ok {
			writeBody(w, status, "application/json", `{"error":"invalid_client","error_description":"Client authentication failed"}`)
			return
		}
		writeBody(w, 200, "application/json", tokenBody)
	}
}

func endpoint(tokenURL string, method exchange.AuthMethod) exchange.Endpoint {
	return exchange.Endpoint{
		TokenURL:     tokenURL,
		ClientID:     testClientID,
		ClientSecret: secret.String(testSecret),
		AuthMethod:   method,
	}
}

func newClient(opts exchange.Options) *exchange.Client {
	if opts.Now == nil {
		opts.Now = func() time.Time { return parseNow }
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return exchange.New(opts)
}
