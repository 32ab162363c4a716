package browser_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/dromos-dev/dromos/sdk"
)

// devConfirmButton is the one-click confirmation of dromos dev's return
// page, shown when it is the flow's confirm_url.
const devConfirmButton = "button.confirm"

// confirmTab is a browser tab on the confirm page, and that page's URL.
type confirmTab struct {
	tab context.Context
	url string
}

// TestDevReturnPageConfirmsWithOneClick: in `dromos dev`, a connection
// that requires confirmation, with the demo return page as its
// confirm_url, is confirmed with one click in the consenting browser; the
// same click in another browser fails the connection (browser_mismatch):
// the dev shortcut stands in for the application's user step only, the
// broker still checks the browser.
func TestDevReturnPageConfirmsWithOneClick(t *testing.T) {
	exe := chromium(t)
	dev := startDev(t)
	agent, err := sdk.New(dev.gatewayURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := callCtx(t)
	// consent requests a connection for alice that requires confirmation
	// and approves it in a fresh browser, which lands on the confirm page.
	consent := func() (*sdk.Connection, confirmTab) {
		t.Helper()
		conn, err := agent.RequestConnection(ctx, sdk.RequestConnectionInput{
			UserID: "alice", ProviderName: "demo", Scopes: []string{"openid", "email", "offline_access"},
			ReturnURL: dev.brokerURL + "/dev/return?from=browser-e2e", ConfirmURL: dev.brokerURL + "/dev/return"})
		if err != nil {
			t.Fatal(err)
		}
		tab, _ := launch(t, exe)
		act(t, tab, "consenting",
			chromedp.Navigate(conn.AuthURL), chromedp.WaitVisible(chromedp.CSS("button.approve")),
			chromedp.Clear(chromedp.ID("username")), chromedp.SendKeys(chromedp.ID("username"), "alice"),
			chromedp.Click(chromedp.CSS("button.approve")), chromedp.WaitVisible(chromedp.CSS(devConfirmButton)))
		if h := read(t, tab, "reading the heading", chromedp.Text(chromedp.CSS("h1"))); h != "Confirm the connection" {
			t.Fatalf("confirm page says %q", h)
		}
		if b := read(t, tab, "reading the button", chromedp.Text(chromedp.CSS(devConfirmButton))); b != "Confirm as alice" {
			t.Fatalf("button says %q, want the flow's user", b)
		}
		at := location(t, tab)
		if at.Path != "/dev/return" || at.Query().Get("connection_id") != conn.ConnectionID || at.Query().Get("confirmation") == "" || at.Query().Has("status") {
			t.Fatalf("confirm page at %s with connection_id=%q, confirmation set %v, status set %v", at.Path,
				at.Query().Get("connection_id"), at.Query().Get("confirmation") != "", at.Query().Has("status"))
		}
		st, err := agent.CheckConnection(ctx, conn.ConnectionID)
		if err != nil || st.Status != sdk.StatusPending || st.Detail != "awaiting_confirmation" {
			t.Fatalf("check-connection before the click: %+v, %v", st, err)
		}
		if _, err := agent.GetToken(ctx, conn.ConnectionID); !errors.Is(err, sdk.ErrPending) {
			t.Fatalf("token before the click: %v, want ErrPending", err)
		}
		return conn, confirmTab{tab, at.String()}
	}

	t.Run("one click", func(t *testing.T) {
		conn, c := consent()
		act(t, c.tab, "clicking Confirm", chromedp.Click(chromedp.CSS(devConfirmButton)), chromedp.WaitVisible(devOutcome))
		if h := read(t, c.tab, "reading the outcome", chromedp.Text(chromedp.CSS("h1"))); h != "Connected" {
			t.Fatalf("after the click the page says %q: %s", h, read(t, c.tab, "reading the page", chromedp.Text(chromedp.CSS("p"))))
		}
		q := location(t, c.tab).Query()
		if q.Get("status") != "success" || q.Get("connection_id") != conn.ConnectionID || q.Get("from") != "browser-e2e" {
			t.Fatalf("return query: status=%q connection_id=%q from=%q", q.Get("status"), q.Get("connection_id"), q.Get("from"))
		}
		if err := agent.WaitForActive(ctx, conn.ConnectionID, quickWait); err != nil {
			t.Fatal(err)
		}
		tok, err := agent.GetToken(ctx, conn.ConnectionID)
		if err != nil || tok.AccessToken == "" {
			t.Fatalf("token after the click: %v", err)
		}
		confirmURL, _ := url.Parse(c.url)
		logs := dev.out.String()
		for _, secret := range []string{confirmURL.Query().Get("confirmation"), tok.AccessToken} {
			if strings.Contains(logs, secret) {
				t.Fatal("dromos dev logged the confirmation value or the token")
			}
		}
	})

	t.Run("another browser", func(t *testing.T) {
		conn, c := consent()
		other, _ := launch(t, exe)
		act(t, other, "opening the confirm page elsewhere", chromedp.Navigate(c.url), chromedp.WaitVisible(chromedp.CSS(devConfirmButton)),
			chromedp.Click(chromedp.CSS(devConfirmButton)), chromedp.WaitVisible(devOutcome))
		if h := read(t, other, "reading the outcome", chromedp.Text(chromedp.CSS("h1"))); h != "Not connected" {
			t.Fatalf("the other browser's page says %q", h)
		}
		if q := location(t, other).Query(); q.Get("status") != "error" || q.Get("error") != "browser_mismatch" {
			t.Fatalf("return query: status=%q error=%q", q.Get("status"), q.Get("error"))
		}
		st, err := agent.CheckConnection(ctx, conn.ConnectionID)
		if err != nil || st.Status != sdk.StatusFailed || st.Reason != "browser_mismatch" {
			t.Fatalf("check-connection: %+v, %v", st, err)
		}
		// The consenting browser's click comes too late now.
		act(t, c.tab, "clicking Confirm in the consenting browser", chromedp.Click(chromedp.CSS(devConfirmButton)), chromedp.WaitVisible(devOutcome))
		if e := read(t, c.tab, "reading the error", chromedp.Text(chromedp.CSS("p code:last-of-type"))); e != "confirmation_over" {
			t.Fatalf("late click shows %q, want confirmation_over", e)
		}
		if _, err := agent.GetToken(ctx, conn.ConnectionID); err == nil {
			t.Fatal("token after the failed confirmation")
		}
	})
}
