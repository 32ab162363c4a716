package browser_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dromos-dev/dromos/sdk"
)

// recorder keeps everything an agent process received from the gateway:
// every response's status line, headers and body.
type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	got  bytes.Buffer
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.mu.Lock()
	r.got.WriteString(resp.Status + "\n")
	_ = resp.Header.Write(&r.got)
	r.got.Write(body)
	r.got.WriteString("\n")
	r.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, rerr
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got.String()
}

// brokerToken reads a connection's current access token straight from the
// dev broker (the test, not the agent, may).
func brokerToken(t *testing.T, brokerURL, id string) string {
	t.Helper()
	resp, err := http.Get(brokerURL + "/connections/" + id + "/token")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("broker token read: %d %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}

var retriedCallRE = regexp.MustCompile(`"msg":"proxy call".*"retried":true`)

// TestProxyAtDevProvider: an agent using the SDK in proxy mode reads the
// demo provider's userinfo as the user through `dromos dev`'s gateway; the
// provider revokes the access token mid-run and the gateway refreshes and
// retries once; the agent never receives a token.
func TestProxyAtDevProvider(t *testing.T) {
	exe := chromium(t)
	dataDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dev := &devProcess{process: startProcess(t, "dev", []string{}, "dev", "--data-dir", dataDir,
		"--broker-port", "0", "--gateway-port", "0", "--grpc-port", "0")}
	b, err := dev.waitFor(ctx, devBrokerRE)
	if err != nil {
		t.Fatalf("%v\n%s", err, dev.out)
	}
	g, err := dev.waitFor(ctx, devGatewayRE)
	if err != nil {
		t.Fatalf("%v\n%s", err, dev.out)
	}
	dev.brokerURL, dev.gatewayURL = b[1], g[1]

	rec := &recorder{base: http.DefaultTransport}
	agent, err := sdk.New(dev.gatewayURL, sdk.WithProxy(), sdk.WithHTTPClient(&http.Client{Transport: rec, Timeout: 20 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	call := callCtx(t)
	conn, err := agent.RequestConnection(call, sdk.RequestConnectionInput{
		UserID: "alice", ProviderName: "demo", Scopes: []string{"openid", "email", "offline_access"},
		ReturnURL: dev.brokerURL + "/dev/return?from=proxy-e2e"})
	if err != nil {
		t.Fatal(err)
	}
	tab, _ := launch(t, exe)
	act(t, tab, "consenting at the demo provider",
		chromedp.Navigate(conn.AuthURL), chromedp.WaitVisible(chromedp.CSS("button.approve")),
		chromedp.Clear(chromedp.ID("username")), chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.Click(chromedp.CSS("button.approve")), chromedp.WaitVisible(devOutcome))
	if err := agent.WaitForActive(call, conn.ConnectionID, quickWait); err != nil {
		t.Fatal(err)
	}

	api := agent.HTTPClient(call, conn.ConnectionID)
	userinfo := func() map[string]any {
		t.Helper()
		resp, err := api.Get(dev.brokerURL + "/demo/userinfo")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("userinfo through the proxy: %d %v", resp.StatusCode, err)
		}
		return out
	}
	first := userinfo()
	if first["sub"] == nil || !strings.Contains(fmt.Sprint(first), "alice") {
		t.Fatalf("userinfo is not alice's: %v", first)
	}

	// The provider revokes the access token the gateway holds.
	t1 := brokerToken(t, dev.brokerURL, conn.ConnectionID)
	var secrets struct {
		DemoClientSecret string `json:"demo_client_secret"`
	}
	raw, err := os.ReadFile(filepath.Join(dataDir, "secrets.json"))
	if err != nil || json.Unmarshal(raw, &secrets) != nil {
		t.Fatalf("reading the dev secrets: %v", err)
	}
	req, _ := http.NewRequest("POST", dev.brokerURL+"/demo/revoke", strings.NewReader(url.Values{"token": {t1}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape("dromos-dev"), url.QueryEscape(secrets.DemoClientSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoking at the demo provider: %v %v", resp, err)
	}
	resp.Body.Close()

	// The next call sees the provider's 401, the gateway refreshes once and
	// retries: the agent gets the userinfo, not the 401.
	second := userinfo()
	if second["sub"] != first["sub"] {
		t.Fatalf("userinfo after the revocation is someone else's: %v", second)
	}
	t2 := brokerToken(t, dev.brokerURL, conn.ConnectionID)
	if t2 == t1 {
		t.Fatal("the broker still holds the revoked token: no refresh happened")
	}
	if _, err := dev.waitFor(ctx, retriedCallRE); err != nil {
		t.Fatalf("no retried proxy call in the gateway's log: %v", err)
	}

	// Proxy mode sends nothing to a host outside the provider's bases.
	if _, err := api.Get("http://127.0.0.1:9/elsewhere"); !errors.Is(err, sdk.ErrNotProxied) {
		t.Fatalf("foreign host: %v", err)
	}
	// Everything the agent received: no token of the connection.
	got := rec.String()
	for i, tok := range []string{t1, t2} {
		if strings.Contains(got, tok) {
			t.Fatalf("access token #%d reached the agent", i+1)
		}
	}
	if !strings.Contains(got, "alice") {
		t.Fatal("the recorder saw none of the agent's answers")
	}
	assertNoSecretsLogged(t, []*process{dev.process}, t1, t2)
}

// TestProxyAtIndependentOP: a proxy-only agent connects to the
// independent OP (zitadel's example), is refused the token, and reads the
// OP's userinfo API as the user through the gateway's proxy with the SDK
// in proxy mode; nothing it received holds the token.
func TestProxyAtIndependentOP(t *testing.T) {
	exe := chromium(t)
	s := startOPStack(t, func(s *opStack) []string {
		return []string{"GATEWAY_API_KEYS=agent-e2e:" + s.agentKey + ";proxy-only", "GATEWAY_PROXY_ALLOW_PRIVATE=true"}
	})
	ctx := callCtx(t)
	// The operator lists the OP's own root as its API base.
	body, _ := json.Marshal(map[string]any{"profile": map[string]any{
		"name": "example-api", "issuer": s.op.Issuer, "enable_discovery": true,
		"client_id": s.op.ClientID, "client_secret": s.op.ClientSecret,
		"scopes": []string{"openid", "email"}, "api_base_urls": []string{s.op.Issuer},
	}})
	req, _ := http.NewRequest(http.MethodPost, s.brokerURL+"/providers", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", s.brokerKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("registering the OP with its API base: %v %v", resp, err)
	}
	resp.Body.Close()

	rec := &recorder{base: http.DefaultTransport}
	agent, err := sdk.New(s.gatewayURL, sdk.WithAPIKey(s.agentKey), sdk.WithProxy(),
		sdk.WithHTTPClient(&http.Client{Transport: rec, Timeout: 20 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := agent.RequestConnection(ctx, sdk.RequestConnectionInput{
		UserID: "alice", ProviderName: "example-api", Scopes: opScopes, ReturnURL: s.ret.URL + "/back"})
	if err != nil {
		t.Fatal(err)
	}
	tab, closeBrowser := launch(t, exe)
	act(t, tab, "logging in at the OP", chromedp.Navigate(conn.AuthURL), chromedp.WaitVisible(chromedp.ID("password")),
		loginAtOP(s.op), chromedp.WaitVisible(chromedp.ID("landed")))
	closeBrowser()
	if err := agent.WaitForActive(ctx, conn.ConnectionID, quickWait); err != nil {
		t.Fatal(err)
	}
	if _, err := agent.GetToken(ctx, conn.ConnectionID); err == nil || !strings.Contains(err.Error(), "proxy_only") {
		t.Fatalf("a proxy-only agent's token read: %v", err)
	}

	api := agent.HTTPClient(ctx, conn.ConnectionID)
	resp, err = api.Get(s.op.Issuer + "/userinfo")
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo through the proxy: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if info["sub"] == nil || info["sub"] == "" {
		t.Fatalf("userinfo without a subject: %v", info)
	}

	// The test (not the agent) reads the token at the broker to look for
	// it in what the agent received.
	treq, _ := http.NewRequest("GET", s.brokerURL+"/connections/"+conn.ConnectionID+"/token", nil)
	treq.Header.Set("X-API-Key", s.brokerKey)
	tresp, err := http.DefaultClient.Do(treq)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
	}
	if err := json.NewDecoder(tresp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("broker token read: %d %v", tresp.StatusCode, err)
	}
	tresp.Body.Close()
	if got := rec.String(); strings.Contains(got, tok.AccessToken) || (tok.IDToken != "" && strings.Contains(got, tok.IDToken)) {
		t.Fatal("a token reached the agent")
	}
	assertNoSecretsLogged(t, []*process{s.broker, s.gateway}, tok.AccessToken, s.agentKey, s.brokerKey)
}
