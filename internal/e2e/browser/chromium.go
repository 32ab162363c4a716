package browser

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// DebianChromium is where Debian's chromium package installs the browser.
const DebianChromium = "/usr/bin/chromium"

// ExecPath returns the Chromium to drive: DebianChromium when it is there,
// else "chromium" on PATH.
func ExecPath() (string, bool) {
	if fi, err := os.Stat(DebianChromium); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return DebianChromium, true
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p, true
	}
	return "", false
}

// Options are the allocator options of every test browser: headless, a
// profile of its own in userDataDir, and every feature that talks to the
// network on its own switched off, so the only traffic is what the test
// drives on 127.0.0.1. Host names resolve nowhere, so a stray request to
// the internet fails instead of leaving the machine.
func Options(execPath, userDataDir string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(execPath),
		chromedp.UserDataDir(userDataDir),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // CI runs as root in a container
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,AutofillServerCommunication"),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("disable-dev-shm-usage", true), // /dev/shm is tiny in containers
		chromedp.Flag("password-store", "basic"),     // no desktop keyring
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1024, 768),
		// The crash reporter keeps its database under the XDG folders, not
		// the profile; point them into the profile so nothing lands in HOME.
		chromedp.Env("XDG_CONFIG_HOME="+filepath.Join(userDataDir, "xdg-config"),
			"XDG_CACHE_HOME="+filepath.Join(userDataDir, "xdg-cache")),
	}
}

// Launch starts a headless Chromium with a fresh profile and returns the
// context of its first tab and a func that closes the browser. The browser
// lives at most lifetime. Closing waits for the browser's processes — the
// test fails if any of them outlives it — and removes the profile; the
// test's cleanup closes it if the test has not.
func Launch(t testing.TB, execPath string, lifetime time.Duration) (context.Context, func()) {
	t.Helper()
	dir, err := os.MkdirTemp("", "dromos-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	life, cancelLife := context.WithTimeout(context.Background(), lifetime)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(life, Options(execPath, dir)...)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	var once sync.Once
	closeBrowser := func() {
		once.Do(func() {
			cancelTab()   // closes the browser gracefully
			cancelAlloc() // waits for its process to exit
			cancelLife()
			if pids := reapLeftovers(dir); len(pids) > 0 {
				t.Errorf("Chromium processes %v outlived the browser; killed them", pids)
			}
			if err := removeAll(dir); err != nil {
				t.Errorf("removing the Chromium profile: %v", err)
			}
		})
	}
	t.Cleanup(closeBrowser)
	// The first action starts the browser and ties it to the tab context,
	// which only closeBrowser cancels (or lifetime ends).
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("starting Chromium %s: %v", execPath, err)
	}
	return tab, closeBrowser
}

// reapLeftovers kills the processes still running with the profile dir
// and returns their ids. Chromium passes --user-data-dir to every child and
// the crash reporter gets a database inside it (see Options), so the
// command line finds them all. It only looks on Linux, where /proc
// exists; elsewhere it finds nothing.
func reapLeftovers(dir string) []int {
	// Children can take a moment to notice that the browser is gone: look
	// for up to two seconds before killing them.
	const looks = 40
	for i := 1; ; i++ {
		pids := processesOf(dir)
		if len(pids) == 0 || i == looks {
			for _, pid := range pids {
				if p, err := os.FindProcess(pid); err == nil {
					_ = p.Kill()
				}
			}
			return pids
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processesOf lists the processes started for the profile dir: with
// --user-data-dir=dir, or with an argument naming a path inside it.
func processesOf(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	flag, inside := []byte("--user-data-dir="+dir), []byte(dir+string(filepath.Separator))
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		for a := range bytes.SplitSeq(cmdline, []byte{0}) {
			if bytes.Equal(a, flag) || bytes.Contains(a, inside) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// removeAll retries for a moment: a Chromium helper that has just exited
// can leave a file behind while the directory is being removed.
func removeAll(dir string) error {
	var err error
	for range 20 {
		if err = os.RemoveAll(dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}
