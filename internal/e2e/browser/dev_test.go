package browser_test

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/dromos-dev/dromos/sdk"
)

// devOutcome matches the heading of `dromos dev`'s /dev/return page.
const devOutcome = `//h1[. = "Connected" or . = "Not connected"]`

// checkScreenshot checks that path holds a PNG of a rendered page: it
// decodes, has a size, and is not a single flat color.
func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot %s is not a PNG (%d bytes)", path, len(raw))
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() == 0 || b.Dy() == 0 || !hasTwoColors(img) {
		t.Fatalf("screenshot %v shows nothing", b)
	}
}

func hasTwoColors(img image.Image) bool {
	b := img.Bounds()
	r0, g0, b0, a0 := img.At(b.Min.X, b.Min.Y).RGBA()
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			if r, g, bl, a := img.At(x, y).RGBA(); r != r0 || g != g0 || bl != b0 || a != a0 {
				return true
			}
		}
	}
	return false
}

// TestConsentAtDevProvider drives `dromos dev`'s demo consent page: Approve
// connects and gives the agent tokens, Deny fails the connection.
func TestConsentAtDevProvider(t *testing.T) {
	exe := chromium(t)
	dev := startDev(t)
	// dromos dev's gateway admits anonymous agents.
	agent, err := sdk.New(dev.gatewayURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		button      string
		wantHeading string
		wantStatus  string
		wantError   string
	}{
		{name: "approve", button: "button.approve", wantHeading: "Connected", wantStatus: "success"},
		{name: "deny", button: "button.deny", wantHeading: "Not connected", wantStatus: "error", wantError: "access_denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := callCtx(t)
			conn, err := agent.RequestConnection(ctx, sdk.RequestConnectionInput{
				UserID: "alice", ProviderName: "demo", Scopes: []string{"openid", "email", "offline_access"},
				ReturnURL: dev.brokerURL + "/dev/return?from=browser-e2e"})
			if err != nil {
				t.Fatal(err)
			}

			tab, _ := launch(t, exe)
			act(t, tab, "opening authUrl", chromedp.Navigate(conn.AuthURL), chromedp.WaitVisible(chromedp.CSS("button.approve")))
			shot := filepath.Join(t.TempDir(), "consent-"+tc.name+".png")
			if err := os.WriteFile(shot, read(t, tab, "taking a screenshot", chromedp.CaptureScreenshot()), 0o600); err != nil {
				t.Fatal(err)
			}
			checkScreenshot(t, shot)

			act(t, tab, "answering the consent page",
				chromedp.Clear(chromedp.ID("username")),
				chromedp.SendKeys(chromedp.ID("username"), "alice"),
				chromedp.Click(chromedp.CSS(tc.button)),
				chromedp.WaitVisible(devOutcome))
			if h := read(t, tab, "reading the outcome", chromedp.Text(chromedp.CSS("h1"))); h != tc.wantHeading {
				t.Fatalf("return page says %q, want %q", h, tc.wantHeading)
			}
			at := location(t, tab)
			q := at.Query()
			if at.Host != hostOf(t, dev.brokerURL) || at.Path != "/dev/return" {
				t.Fatalf("landed on %s%s, not on /dev/return", at.Host, at.Path)
			}
			if q.Get("status") != tc.wantStatus || q.Get("error") != tc.wantError ||
				q.Get("connection_id") != conn.ConnectionID || q.Get("from") != "browser-e2e" {
				t.Fatalf("return query: status=%q error=%q connection_id=%q from=%q",
					q.Get("status"), q.Get("error"), q.Get("connection_id"), q.Get("from"))
			}

			if tc.wantStatus != "success" {
				st, err := agent.CheckConnection(ctx, conn.ConnectionID)
				if err != nil || st.Status != sdk.StatusFailed {
					t.Fatalf("check-connection after deny: %+v, %v", st, err)
				}
				if err := agent.WaitForActive(ctx, conn.ConnectionID, quickWait); !errors.Is(err, sdk.ErrFailed) {
					t.Fatalf("WaitForActive after deny: %v, want ErrFailed", err)
				}
				if _, err := agent.GetToken(ctx, conn.ConnectionID); !errors.Is(err, sdk.ErrReauthRequired) {
					t.Fatalf("token after deny: %v, want ErrReauthRequired", err)
				}
				return
			}
			if err := agent.WaitForActive(ctx, conn.ConnectionID, quickWait); err != nil {
				t.Fatal(err)
			}
			tok, err := agent.GetToken(ctx, conn.ConnectionID)
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken == "" || tok.IDToken == "" || tok.Provider != "demo" {
				t.Fatalf("token: %v", tok)
			}
		})
	}
}
