package browser_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/dromos-dev/dromos/internal/demoprovider"
	"github.com/dromos-dev/dromos/sdk"
)

// startDemoProvider runs the demo OpenID Provider in this process (so the
// test can read its revocation count) and registers it at the broker
// process as "demo", by issuer.
func startDemoProvider(t *testing.T, s *opStack) *demoprovider.Provider {
	t.Helper()
	var p *demoprovider.Provider
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.Handler().ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	const clientID, clientSecret = "confirm-e2e-client", "confirm-e2e-secret-0123456789"
	var err error
	p, err = demoprovider.New(demoprovider.Options{Issuer: srv.URL, ClientID: clientID, ClientSecret: clientSecret,
		RedirectURIs: []string{s.brokerURL + "/auth/callback"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"profile": map[string]any{
		"name": "demo", "issuer": srv.URL, "enable_discovery": true,
		"client_id": clientID, "client_secret": clientSecret, "scopes": []string{"openid"},
	}})
	s.brokerCall(t, http.MethodPost, "/providers", body, http.StatusCreated, nil)
	return p
}

// brokerCall calls the broker's internal API with its key.
func (s *opStack) brokerCall(t *testing.T, method, path string, body []byte, want int, out any) {
	t.Helper()
	req, _ := http.NewRequest(method, s.brokerURL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", s.brokerKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConfirmationStopsForwardedConsent plays issue 18's attack with real
// processes and two real browsers: mallory's agent starts a connection for
// mallory that requires confirmation and the link reaches alice, who
// consents in her browser. The application, where alice is signed in,
// confirms as alice: the connection fails with user_mismatch, the provider
// saw the grant revoked, no token was ever readable, and the audit trail
// says so. Then the honest path: mallory consents in mallory's browser and
// the application confirms as mallory.
func TestConfirmationStopsForwardedConsent(t *testing.T) {
	exe := chromium(t)
	s := startOPStack(t)
	demo := startDemoProvider(t, s)
	ctx := callCtx(t)
	request := func() *sdk.Connection {
		t.Helper()
		conn, err := s.agent.RequestConnection(ctx, sdk.RequestConnectionInput{UserID: "mallory", ProviderName: "demo",
			Scopes: []string{"openid"}, ReturnURL: s.ret.URL + "/back", ConfirmURL: s.ret.URL + "/confirm"})
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	// consent approves at the demo provider in tab and returns the
	// confirmation value the application's confirm page received.
	consent := func(tab context.Context, who string, conn *sdk.Connection) string {
		t.Helper()
		act(t, tab, who+" opens the authUrl", chromedp.Navigate(conn.AuthURL), chromedp.WaitVisible(chromedp.CSS("button.approve")))
		act(t, tab, who+" approves", chromedp.Click(chromedp.CSS("button.approve")), chromedp.WaitVisible(chromedp.ID("landed")))
		at := location(t, tab)
		q := at.Query()
		if at.Path != "/confirm" || q.Get("connection_id") != conn.ConnectionID || q.Get("confirmation") == "" || q.Has("status") {
			t.Fatalf("after consent %s's browser is at %s (status=%q), want the confirm page with a confirmation",
				who, at.Path, q.Get("status"))
		}
		<-s.ret.landed
		st, err := s.agent.CheckConnection(ctx, conn.ConnectionID)
		if err != nil || st.Status != sdk.StatusPending || st.Detail != "awaiting_confirmation" {
			t.Fatalf("awaiting confirmation: %+v, %v", st, err)
		}
		if _, err := s.agent.GetToken(ctx, conn.ConnectionID); !errors.Is(err, sdk.ErrPending) {
			t.Fatalf("token while awaiting confirmation: %v, want ErrPending", err)
		}
		return q.Get("confirmation")
	}

	// The attack.
	conn := request()
	alice, closeAlice := launch(t, exe)
	value := consent(alice, "alice", conn)
	_, err := s.agent.ConfirmConnection(ctx, value, "alice")
	var ae *sdk.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Code != "user_mismatch" {
		t.Fatalf("confirming as alice: %v, want 409 user_mismatch", err)
	}
	if n := demo.Stats().Revocations; n != 1 {
		t.Fatalf("the provider revoked %d grants, want 1", n)
	}
	st, err := s.agent.CheckConnection(ctx, conn.ConnectionID)
	if err != nil || st.Status != sdk.StatusFailed || st.Reason != "user_mismatch" {
		t.Fatalf("after the mismatch: %+v, %v", st, err)
	}
	if tok, err := s.agent.GetToken(ctx, conn.ConnectionID); err == nil {
		t.Fatalf("a token is readable after the mismatch: %v", tok.Provider)
	}
	var audit struct {
		Events []struct {
			Type   string            `json:"type"`
			Detail map[string]string `json:"detail"`
		} `json:"events"`
	}
	s.brokerCall(t, http.MethodGet, "/audit?connection_id="+url.QueryEscape(conn.ConnectionID), nil, http.StatusOK, &audit)
	found := false
	for _, e := range audit.Events {
		if e.Type == "confirmation.failed" && e.Detail["reason"] == "user_mismatch" && e.Detail["revoked_at_provider"] == "yes" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no confirmation.failed event in the audit trail: %+v", audit.Events)
	}
	closeAlice()

	// The honest path.
	conn = request()
	mallory, closeMallory := launch(t, exe)
	honest := consent(mallory, "mallory", conn)
	ok, err := s.agent.ConfirmConnection(ctx, honest, "mallory")
	if err != nil || ok.ConnectionID != conn.ConnectionID {
		t.Fatalf("confirming as mallory: %+v, %v", ok, err)
	}
	act(t, mallory, "mallory's browser continues", chromedp.Navigate(ok.ContinueURL), chromedp.WaitVisible(chromedp.ID("landed")))
	if at := location(t, mallory); at.Path != "/back" || at.Query().Get("status") != "success" || at.Query().Get("connection_id") != conn.ConnectionID {
		t.Fatalf("after confirming mallory's browser is at %s status=%q", at.Path, at.Query().Get("status"))
	}
	<-s.ret.landed
	if err := s.agent.WaitForActive(ctx, conn.ConnectionID, quickWait); err != nil {
		t.Fatal(err)
	}
	tok, err := s.agent.GetToken(ctx, conn.ConnectionID)
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("token after confirmation: %v", err)
	}
	if n := demo.Stats().Revocations; n != 1 {
		t.Fatalf("the honest path revoked something: %d revocations", n)
	}
	closeMallory()
	assertNoSecretsLogged(t, []*process{s.broker, s.gateway}, value, honest, ok.ContinueURL, tok.AccessToken, s.agentKey, s.brokerKey)
}
