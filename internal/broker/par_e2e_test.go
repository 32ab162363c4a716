package broker_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/testenv"
)

// panvaOP is panva's oidc-provider (npm, pinned in test/oidc-provider),
// an OpenID Provider written independently of Dromos, run as a Node.js
// process on a free loopback port.
type panvaOP struct {
	issuer string
}

func startPanvaOP(t *testing.T, redirectURI string, requirePAR bool, env ...string) *panvaOP {
	t.Helper()
	dir, err := filepath.Abs("../../test/oidc-provider")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider")); err != nil {
		t.Skip("oidc-provider is not installed: run `npm ci` in test/oidc-provider (.ci/run does)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	cmd := exec.Command("node", "server.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CLIENT_ID=dromos-par", "CLIENT_SECRET=par-client-secret-0123456789",
		"REDIRECT_URI="+redirectURI, "REQUIRE_PAR="+map[bool]string{true: "true", false: "false"}[requirePAR])
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var line struct{ Issuer string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Issuer != "" {
				found <- line.Issuer
			}
		}
	}()
	select {
	case iss := <-found:
		return &panvaOP{issuer: iss}
	case <-time.After(60 * time.Second):
		t.Fatal("oidc-provider did not start within 60 s")
	}
	return nil
}

// seen is what the provider counted: pushed requests, and authorization
// requests that carried state in the browser's URL.
func (o *panvaOP) seen(t *testing.T) (par, frontChannelState int) {
	t.Helper()
	resp, err := http.Get(o.issuer + "/test/seen")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct{ Par, FrontChannelState int }
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s.Par, s.FrontChannelState
}

// TestPushedAuthorizationRequestsWithIndependentOP: against an
// authorization server that accepts only pushed requests (RFC 9126), the
// broker pushes the request over the back channel, authenticated as at the
// token endpoint, and sends the browser with client_id and request_uri
// alone; the consent completes and the token is stored. Before PAR
// support the provider refused the flow ("Pushed Authorization Request
// must be used") with state, challenge and scopes in the front channel.
func TestPushedAuthorizationRequestsWithIndependentOP(t *testing.T) {
	h := newHarness(t, sqliteURL(t))
	op := startPanvaOP(t, h.srv.URL+"/auth/callback", true)
	ret, landed := returnPage(t)
	h.registerProvider(map[string]any{
		"name": "panva", "issuer": op.issuer, "enable_discovery": true,
		"client_id": "dromos-par", "client_secret": "par-client-secret-0123456789",
		"token_endpoint_auth_method": "client_secret_basic",
	})
	c := h.consentOnly("panva", []string{"openid", "email"}, ret.URL+"/done")

	browser := testenv.NewBrowser(t)
	page, body, status := browser.Get(c.AuthURL)
	if status != 200 || !strings.Contains(page.Path, "/interaction/") {
		t.Fatalf("expected the provider's login page, got %d at %s: %.300s", status, page.Path, body)
	}
	action, form, err := testenv.Form(page, body)
	if err != nil {
		t.Fatal(err)
	}
	form.Set("login", "alice")
	form.Set("password", "any")
	page, body, status = browser.PostForm(action, form)
	if status != 200 || !strings.Contains(page.Path, "/interaction/") {
		t.Fatalf("expected the consent page, got %d at %s", status, page.Path)
	}
	action, form, err = testenv.Form(page, body)
	if err != nil {
		t.Fatal(err)
	}
	final, _, status := browser.PostForm(action, form)
	if status != 200 || final.Host != strings.TrimPrefix(ret.URL, "http://") {
		t.Fatalf("did not land on the return page: %d %s", status, final)
	}
	if q := <-landed; q.Get("status") != "success" || q.Get("connection_id") != c.ConnectionID {
		t.Fatalf("return query %v", q)
	}
	var conn map[string]any
	h.do("GET", "/connections/"+c.ConnectionID, nil, &conn)
	if conn["status"] != "active" || conn["subject"] != "alice" {
		t.Fatalf("connection %v", conn)
	}
	var tok map[string]any
	if st := h.do("GET", "/connections/"+c.ConnectionID+"/token", nil, &tok); st != 200 || tok["access_token"] == "" {
		t.Fatalf("token read %d %v", st, tok)
	}
	par, front := op.seen(t)
	if par != 1 || front != 0 {
		t.Fatalf("provider saw %d pushed requests and %d authorization requests with state in the URL; want 1 and 0", par, front)
	}
}
