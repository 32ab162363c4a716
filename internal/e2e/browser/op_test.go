package browser_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"iter"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/dromos-dev/dromos/internal/testenv"
	"github.com/dromos-dev/dromos/sdk"
)

// opScopes ask the OP for an id_token and a refresh token.
var opScopes = []string{"openid", "email", "profile", "offline_access"}

var quickWait = sdk.WaitOptions{Interval: 100 * time.Millisecond, MaxInterval: 500 * time.Millisecond}

// rejectedHeading is the broker's 400 page for a callback it refuses.
const rejectedHeading = `//h1[. = "This sign-in link cannot be used"]`

// loginAtOP fills and submits the OP's login form.
func loginAtOP(op *testenv.OP) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.SendKeys(chromedp.ID("username"), op.Username),
		chromedp.SendKeys(chromedp.ID("password"), op.Password),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
	)
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// jwtClaims decodes a JWT's payload; the broker has verified the signature.
func jwtClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("id_token is not a JWS compact serialization (%d parts)", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("id_token payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatalf("id_token payload: %v", err)
	}
	return claims
}

// TestConsentAtIndependentOP: an agent asks the gateway for a connection,
// a real browser logs in at the independent OP, lands on the agent's
// return page, and the agent gets tokens through the SDK.
func TestConsentAtIndependentOP(t *testing.T) {
	exe := chromium(t)
	s := startOPStack(t)
	ctx := callCtx(t)

	conn, err := s.agent.RequestConnection(ctx, sdk.RequestConnectionInput{
		UserID: "alice", ProviderName: "example", Scopes: opScopes, ReturnURL: s.ret.URL + "/back?agent=browser-e2e"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(conn.AuthURL, s.brokerURL+"/auth/start/") {
		t.Fatalf("authUrl does not go through the broker's start page: host %s", hostOf(t, conn.AuthURL))
	}
	if st, err := s.agent.CheckConnection(ctx, conn.ConnectionID); err != nil || st.Status != sdk.StatusPending {
		t.Fatalf("before consent: %+v, %v", st, err)
	}

	tab, closeBrowser := launch(t, exe)
	act(t, tab, "opening authUrl", chromedp.Navigate(conn.AuthURL), chromedp.WaitVisible(chromedp.ID("password")))
	if at := location(t, tab); at.Host != hostOf(t, s.op.Issuer) {
		t.Fatalf("authUrl led to %s, not to the OP's login page", at.Host)
	}
	act(t, tab, "logging in at the OP", loginAtOP(s.op), chromedp.WaitVisible(chromedp.ID("landed")))

	landed := location(t, tab)
	q := landed.Query()
	if landed.Host != hostOf(t, s.ret.URL) || landed.Path != "/back" {
		t.Fatalf("landed on %s%s, not on the return page", landed.Host, landed.Path)
	}
	if q.Get("status") != "success" || q.Get("connection_id") != conn.ConnectionID || q.Get("agent") != "browser-e2e" {
		t.Fatalf("return query: status=%q connection_id=%q agent=%q", q.Get("status"), q.Get("connection_id"), q.Get("agent"))
	}
	select {
	case got := <-s.ret.landed:
		if got.Get("connection_id") != conn.ConnectionID {
			t.Fatalf("the return page saw connection %q", got.Get("connection_id"))
		}
	default:
		t.Fatal("the return page's server never saw the browser")
	}

	if err := s.agent.WaitForActive(ctx, conn.ConnectionID, quickWait); err != nil {
		t.Fatal(err)
	}
	tok, err := s.agent.GetToken(ctx, conn.ConnectionID)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.Provider != "example" {
		t.Fatalf("token: %v", tok)
	}
	if claims := jwtClaims(t, tok.IDToken); claims["iss"] != s.op.Issuer || claims["sub"] == "" || claims["sub"] == nil {
		t.Fatalf("id_token claims iss=%v sub=%v", claims["iss"], claims["sub"])
	}
	// Closed first: the broker's graceful stop waits on the browser's
	// open connections.
	closeBrowser()
	assertNoSecretsLogged(t, []*process{s.broker, s.gateway}, tok.AccessToken, tok.IDToken, s.agentKey, s.brokerKey)
}

// providerRequest returns, from the requests the browser has made, the
// authorization request the broker sent it to: a request to the OP
// carrying the flow's state.
func providerRequest(t *testing.T, requests iter.Seq2[network.EventRequestWillBeSent, error], issuer, state string) string {
	t.Helper()
	for ev, err := range requests {
		if err != nil {
			t.Fatalf("the browser was never sent to the OP with the flow's state: %v", err)
		}
		if ev.Request == nil || !strings.HasPrefix(ev.Request.URL, issuer+"/") {
			continue
		}
		if u, err := url.Parse(ev.Request.URL); err == nil && u.Query().Get("state") == state {
			return ev.Request.URL
		}
	}
	t.Fatal("the browser was never sent to the OP with the flow's state")
	return ""
}

// flowCookie returns the broker's flow cookie for connID that the browser
// would send to the callback, or nil.
func flowCookie(t *testing.T, tab context.Context, brokerURL, connID string) *network.Cookie {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, stepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{brokerURL + "/auth/callback"}})
	if err != nil {
		t.Fatalf("reading cookies: %v", err)
	}
	name := "dromos_flow_" + strings.ReplaceAll(connID, "-", "")[:12]
	for _, c := range res.Cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestFlowBoundToStartingBrowser: a consent started in browser A and
// finished, from the provider's URL, in a second browser B is refused at
// the callback, changes nothing, and A can still finish it.
func TestFlowBoundToStartingBrowser(t *testing.T) {
	exe := chromium(t)
	s := startOPStack(t)
	ctx := callCtx(t)

	conn, err := s.agent.RequestConnection(ctx, sdk.RequestConnectionInput{
		UserID: "alice", ProviderName: "example", Scopes: opScopes, ReturnURL: s.ret.URL + "/back"})
	if err != nil {
		t.Fatal(err)
	}

	// A opens authUrl: the broker binds the flow to A with a cookie and
	// sends it on to the OP, where A stops at the login page.
	a, closeA := launch(t, exe)
	evCtx, stopEvents := context.WithTimeout(a, stepTimeout)
	defer stopEvents()
	requests := chromedp.Events(evCtx, network.RequestWillBeSent)
	act(t, a, "opening authUrl in A", chromedp.Navigate(conn.AuthURL), chromedp.WaitVisible(chromedp.ID("password")))
	providerURL := providerRequest(t, requests, s.op.Issuer, conn.State)
	stopEvents()
	c := flowCookie(t, a, s.brokerURL, conn.ConnectionID)
	if c == nil || !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || c.Path != "/" {
		t.Fatalf("A's flow cookie: %+v", c)
	}

	// B, a fresh profile, takes the provider's URL (a leaked link, or a
	// victim lured into an attacker's flow) and logs in there.
	b, closeB := launch(t, exe)
	act(t, b, "opening the provider's URL in B", chromedp.Navigate(providerURL), chromedp.WaitVisible(chromedp.ID("password")))
	sctx, cancel := context.WithTimeout(b, stepTimeout)
	resp, err := chromedp.RunResponse(sctx, loginAtOP(s.op))
	cancel()
	if err != nil || resp == nil {
		t.Fatalf("logging in at the OP in B: %v (browser at %s)", err, where(b))
	}
	act(t, b, "waiting for the broker's refusal", chromedp.WaitVisible(rejectedHeading))
	at := location(t, b)
	if resp.Status != 400 || at.Host != hostOf(t, s.brokerURL) || at.Path != "/auth/callback" {
		t.Fatalf("B's callback: status %d at %s%s, want 400 at the broker's /auth/callback", resp.Status, at.Host, at.Path)
	}
	if msg := read(t, b, "reading the refusal", chromedp.Text(chromedp.CSS("h1 + p"))); !strings.Contains(msg, "This sign-in was started in another browser") {
		t.Fatalf("refusal page says %q", msg)
	}
	if flowCookie(t, b, s.brokerURL, conn.ConnectionID) != nil {
		t.Fatal("B has a flow cookie it never got from the broker")
	}

	// Nothing changed: still pending, no token, no code exchanged, no
	// redirect to the agent.
	if st, err := s.agent.CheckConnection(ctx, conn.ConnectionID); err != nil || st.Status != sdk.StatusPending {
		t.Fatalf("after B's callback: %+v, %v", st, err)
	}
	if _, err := s.agent.GetToken(ctx, conn.ConnectionID); !errors.Is(err, sdk.ErrPending) {
		t.Fatalf("token after B's callback: %v, want ErrPending", err)
	}
	for series, want := range map[string]float64{
		`oauth_callbacks_total{result="rejected_browser_mismatch"}`: 1,
		`oauth_callbacks_total{result="success"}`:                   0,
		`oauth_token_exchanges_total{status="success"}`:             0,
		`oauth_token_exchanges_total{status="error"}`:               0,
	} {
		if got := s.metric(t, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	select {
	case <-s.ret.landed:
		t.Fatal("B reached the agent's return page")
	default:
	}

	// A, which holds the cookie, finishes its own login.
	act(t, a, "logging in at the OP in A", loginAtOP(s.op), chromedp.WaitVisible(chromedp.ID("landed")))
	if q := location(t, a).Query(); q.Get("status") != "success" || q.Get("connection_id") != conn.ConnectionID {
		t.Fatalf("A's return query: status=%q connection_id=%q", q.Get("status"), q.Get("connection_id"))
	}
	if err := s.agent.WaitForActive(ctx, conn.ConnectionID, quickWait); err != nil {
		t.Fatal(err)
	}
	tok, err := s.agent.GetToken(ctx, conn.ConnectionID)
	if err != nil || tok.AccessToken == "" || tok.IDToken == "" {
		t.Fatalf("token after A finished: %v, %v", tok, err)
	}
	if got := s.metric(t, `oauth_token_exchanges_total{status="success"}`); got != 1 {
		t.Fatalf("code exchanges after A finished: %v, want 1", got)
	}
	closeA()
	closeB()
	assertNoSecretsLogged(t, []*process{s.broker, s.gateway}, tok.AccessToken, tok.IDToken, s.agentKey, s.brokerKey)
}
