package browser_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dromos-dev/dromos/internal/e2e/browser"
)

// dromosBinary is the dromos command the tests run as processes, built
// once by TestMain.
var dromosBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dromos-browser-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dromosBinary = filepath.Join(dir, "dromos")
	if out, err := exec.Command("go", "build", "-o", dromosBinary, "github.com/dromos-dev/dromos/cmd/dromos").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building dromos: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	// browserLifetime bounds each test's browser even if a cleanup is
	// never reached.
	browserLifetime = 45 * time.Second
	// stepTimeout bounds one browser step (a navigation, a form).
	stepTimeout = 15 * time.Second
	// callTimeout bounds one test's SDK calls to the gateway.
	callTimeout = 30 * time.Second
)

// chromium returns the browser to drive. Without one the test is skipped
// on a developer's machine, but fails in CI, where a silent skip would
// hide that the browser tests never ran.
func chromium(t *testing.T) string {
	t.Helper()
	if p, ok := browser.ExecPath(); ok {
		return p
	}
	msg := "Chromium not found at " + browser.DebianChromium + " or as chromium on PATH; " +
		"install Debian's chromium package to run the real-browser tests"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: .ci/run installs it)")
	}
	t.Skip(msg)
	return ""
}

// launch starts a fresh browser for the test; see browser.Launch.
func launch(t *testing.T, exe string) (context.Context, func()) {
	t.Helper()
	return browser.Launch(t, exe, browserLifetime)
}

// act runs steps in a tab under stepTimeout. A failure names the page the
// browser was on, without its query: queries carry states and codes.
func act(t *testing.T, tab context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v (browser at %s)", what, err, where(tab))
	}
}

// read runs one action that returns a value, under stepTimeout.
func read[T any](t *testing.T, tab context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v (browser at %s)", what, err, where(tab))
	}
	return v
}

// location is the URL the tab shows.
func location(t *testing.T, tab context.Context) *url.URL {
	t.Helper()
	u, err := url.Parse(read(t, tab, "reading the location", chromedp.Location()))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func where(tab context.Context) string {
	ctx, cancel := context.WithTimeout(tab, 2*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "an unknown page"
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "an unparsable URL"
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}

// callCtx bounds the test's calls to the gateway.
func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}
