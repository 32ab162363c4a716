package browser_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/dromos-dev/dromos/sdk"
)

// TestHostedKeyForm: an agent asks for a connection to an api_key provider
// without the key; a real browser opens the authUrl, sees Dromos's form
// naming the provider, types the key and lands on the agent's return
// page; the agent reads the key through the SDK. A key the provider's
// verification endpoint refuses ends the connection failed, and a post of
// the form from outside the bound browser changes nothing.
func TestHostedKeyForm(t *testing.T) {
	exe := chromium(t)
	s := startOPStack(t)
	ctx := callCtx(t)
	const good, refused = "sk-form-good-4b5c6d7e8f90", "sk-form-refused-0f9e8d7c6b5a"
	verifier := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer "+good {
			_, _ = io.WriteString(w, `{"data":[]}`)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(verifier.Close)
	body, _ := json.Marshal(map[string]any{"profile": map[string]any{"name": "keyapi", "display_name": "Key API",
		"auth_mode": "api_key", "credential": map[string]any{
			"injection": map[string]any{"value_prefix": "Bearer "}, "verify": map[string]any{"url": verifier.URL + "/v1/models"}}}})
	req, _ := http.NewRequest(http.MethodPost, s.brokerURL+"/providers", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", s.brokerKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("registering the api_key provider: %d", resp.StatusCode)
	}

	ask := func() *sdk.Connection {
		t.Helper()
		conn, err := s.agent.RequestConnection(ctx, sdk.RequestConnectionInput{UserID: "alice", ProviderName: "keyapi",
			ReturnURL: s.ret.URL + "/back", Credentials: &sdk.Credentials{}})
		if err != nil {
			t.Fatal(err)
		}
		if conn.Status != "" || !strings.HasPrefix(conn.AuthURL, s.brokerURL+"/auth/start/") {
			t.Fatalf("hosted form connection: status %q, authUrl on %s", conn.Status, hostOf(t, conn.AuthURL))
		}
		return conn
	}
	tab, closeBrowser := launch(t, exe)

	conn := ask()
	act(t, tab, "opening the key form", chromedp.Navigate(conn.AuthURL), chromedp.WaitVisible(chromedp.ID("api_key")))
	if h := read(t, tab, "reading the heading", chromedp.Text(chromedp.CSS("h1"))); h != "Connect Key API" {
		t.Fatalf("the form's heading is %q", h)
	}
	// The form's state, posted by a client without the browser's flow
	// cookie: refused, and the connection stays pending.
	st := read(t, tab, "reading the form state", chromedp.Value(chromedp.CSS(`input[name="state"]`)))
	forged, err := http.PostForm(s.brokerURL+"/auth/key", url.Values{"state": {st}, "api_key": {good}})
	if err != nil {
		t.Fatal(err)
	}
	forged.Body.Close()
	if forged.StatusCode != http.StatusBadRequest {
		t.Fatalf("a post without the flow cookie answered %d", forged.StatusCode)
	}
	if got, err := s.agent.CheckConnection(ctx, conn.ConnectionID); err != nil || got.Status != sdk.StatusPending {
		t.Fatalf("after the forged post: %+v %v", got, err)
	}
	act(t, tab, "submitting the key", chromedp.SendKeys(chromedp.ID("api_key"), good),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)), chromedp.WaitVisible(chromedp.ID("landed")))
	landed := location(t, tab)
	if q := landed.Query(); landed.Path != "/back" || q.Get("status") != "success" || q.Get("connection_id") != conn.ConnectionID {
		t.Fatalf("landed on %s with status=%q", landed.Path, q.Get("status"))
	}
	tok, err := s.agent.GetToken(ctx, conn.ConnectionID)
	if err != nil || tok.Credential == nil || tok.Credential.Value != good || tok.Credential.HeaderValue() != "Bearer "+good {
		t.Fatalf("token after the form: %v %v", tok, err)
	}

	conn = ask()
	act(t, tab, "submitting a refused key", chromedp.Navigate(conn.AuthURL), chromedp.WaitVisible(chromedp.ID("api_key")),
		chromedp.SendKeys(chromedp.ID("api_key"), refused), chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("landed")))
	if q := location(t, tab).Query(); q.Get("status") != "error" || q.Get("error") != "credential_refused" {
		t.Fatalf("refused key landed with status=%q error=%q", q.Get("status"), q.Get("error"))
	}
	if got, err := s.agent.CheckConnection(ctx, conn.ConnectionID); err != nil || got.Status != sdk.StatusFailed || got.Reason != "credential_refused" {
		t.Fatalf("after a refused key: %+v %v", got, err)
	}
	closeBrowser()
	assertNoSecretsLogged(t, []*process{s.broker, s.gateway}, good, refused, s.agentKey, s.brokerKey)
}
