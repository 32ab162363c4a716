package demoprovider

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// newPersistentEnv is newEnv with a StateFile in a fresh folder.
func newPersistentEnv(t *testing.T, mod func(*Options)) (*env, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "demo-provider.json")
	e := newEnv(t, func(o *Options) {
		o.StateFile = path
		if mod != nil {
			mod(o)
		}
	})
	return e, path
}

// restart replaces the provider with a new one built from the same options,
// as `dromos dev` does when it starts again.
func (e *env) restart(t *testing.T) {
	t.Helper()
	p, err := New(e.opts)
	if err != nil {
		t.Fatalf("New after restart: %v", err)
	}
	e.mount(p)
}

func digestHex(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func TestRefreshTokenSurvivesRestartWithStateFile(t *testing.T) {
	e, _ := newPersistentEnv(t, nil)
	first := e.mustTokens(t, "openid email offline_access", "bob")
	rt1 := first.str("refresh_token")

	e.restart(t)
	second := e.refresh(t, rt1)
	if second.status != http.StatusOK {
		t.Fatalf("refresh after restart: %d %v", second.status, second.body)
	}
	rt2 := second.str("refresh_token")
	if rt2 == "" || rt2 == rt1 {
		t.Fatalf("refresh token not rotated after restart: %q", rt2)
	}
	if ui := e.userinfo(t, second.str("access_token")); ui.status != http.StatusOK {
		t.Fatalf("access token refreshed after restart refused: %d", ui.status)
	}

	// The attack, one restart later: the rotated rt1 leaked and is
	// replayed. It must be recognised as reuse, not merely as unknown.
	e.restart(t)
	replay := e.refresh(t, rt1)
	if replay.str("error") != "invalid_grant" || replay.str("access_token") != "" {
		t.Fatalf("replayed refresh token after restart: %d %v", replay.status, replay.body)
	}
	if s := e.p.Stats(); s.RefreshReuses != 1 {
		t.Errorf("reuse not detected after restart: stats %+v", s)
	}
	check := func(when string) {
		t.Helper()
		if r := e.refresh(t, rt2); r.str("error") != "invalid_grant" {
			t.Errorf("%s: newest refresh token of a revoked family: %d %v", when, r.status, r.body)
		}
		for i, at := range []string{first.str("access_token"), second.str("access_token")} {
			if ui := e.userinfo(t, at); ui.status != http.StatusUnauthorized {
				t.Errorf("%s: access token %d of a revoked family still accepted: %d", when, i, ui.status)
			}
		}
	}
	check("after reuse")
	// The revocation itself survives a restart too.
	e.restart(t)
	check("after another restart")
	if s := e.p.Stats(); s.Refreshes != 0 {
		t.Errorf("stats after the last restart = %+v", s)
	}
}

func TestRevocationsSurviveRestartWithStateFile(t *testing.T) {
	e, _ := newPersistentEnv(t, nil)
	revokedGrant := e.mustTokens(t, "openid offline_access", "alice")
	keptGrant := e.mustTokens(t, "openid offline_access", "carol")
	if r := e.revoke(t, revokedGrant.str("refresh_token")); r.status != http.StatusOK {
		t.Fatalf("revoke refresh token: %d", r.status)
	}
	if r := e.revoke(t, keptGrant.str("access_token")); r.status != http.StatusOK {
		t.Fatalf("revoke access token: %d", r.status)
	}

	e.restart(t)
	if r := e.refresh(t, revokedGrant.str("refresh_token")); r.str("error") != "invalid_grant" {
		t.Errorf("revoked refresh token works after restart: %d %v", r.status, r.body)
	}
	if ui := e.userinfo(t, revokedGrant.str("access_token")); ui.status != http.StatusUnauthorized {
		t.Errorf("access token of a revoked family works after restart: %d", ui.status)
	}
	if ui := e.userinfo(t, keptGrant.str("access_token")); ui.status != http.StatusUnauthorized {
		t.Errorf("revoked access token works after restart: %d", ui.status)
	}
	if r := e.refresh(t, keptGrant.str("refresh_token")); r.status != http.StatusOK {
		t.Errorf("refresh token whose access token alone was revoked: %d %v", r.status, r.body)
	}
}

func TestStateFileHoldsNoPlaintextToken(t *testing.T) {
	e, path := newPersistentEnv(t, nil)
	code := e.login(t, "openid email profile offline_access", "dana")
	first := e.exchange(t, code, testVerifier)
	if first.status != http.StatusOK {
		t.Fatalf("exchange: %d %v", first.status, first.body)
	}
	second := e.refresh(t, first.str("refresh_token"))
	if second.status != http.StatusOK {
		t.Fatalf("refresh: %d %v", second.status, second.body)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"code":                 code,
		"code verifier":        testVerifier,
		"client secret":        testClientSecret,
		"first refresh token":  first.str("refresh_token"),
		"second refresh token": second.str("refresh_token"),
		"first access token":   first.str("access_token"),
		"second access token":  second.str("access_token"),
		"first ID token":       first.str("id_token"),
		"second ID token":      second.str("id_token"),
	}
	for name, s := range secrets {
		if s == "" {
			t.Fatalf("%s is empty", name)
		}
		if bytes.Contains(data, []byte(s)) {
			t.Errorf("the state file holds the %s in plaintext", name)
		}
	}
	// It does hold what the restart needs: the digests.
	for _, rt := range []string{first.str("refresh_token"), second.str("refresh_token")} {
		if !bytes.Contains(data, []byte(digestHex(rt))) {
			t.Errorf("the state file lacks the SHA-256 of a refresh token")
		}
	}

	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("state file mode %o, want 600", mode)
		}
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, de := range entries {
			names = append(names, de.Name())
		}
		t.Errorf("folder holds %v, want only the state file (no temporary files left)", names)
	}
}

func TestStateFileMissingStartsEmpty(t *testing.T) {
	e, path := newPersistentEnv(t, nil)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state file exists before any change: %v", err)
	}
	if _, _, families, refresh, revoked := e.p.stateSizes(); families+refresh+revoked != 0 {
		t.Fatalf("state not empty: families %d refresh %d revoked %d", families, refresh, revoked)
	}
	// A grant without offline_access changes no refresh state.
	e.mustTokens(t, "openid", "demo")
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file written without a refresh token: %v", err)
	}
	e.mustTokens(t, "openid offline_access", "demo")
	if _, err := os.Stat(path); err != nil {
		t.Errorf("state file not written after a refresh token was issued: %v", err)
	}
}

func TestStateFileCorrupt(t *testing.T) {
	// marker stands for anything the file might hold; it must not reach
	// the error, which ends up in a terminal or a log.
	const marker = "MARKER-c0ffee-should-not-leak"
	digest := strings.Repeat("ab", sha256.Size)
	family := `"f1":{"username":"demo","scopes":["openid"],"auth_time":"2030-01-01T00:00:00Z","expires_at":"2030-02-01T00:00:00Z"}`
	tests := []struct {
		name    string
		content string
	}{
		{"empty", ""},
		{"not JSON", "not json " + marker},
		{"truncated", `{"version":1,"client_id":"` + testClientID + `","families":{"` + marker},
		{"wrong type", `{"version":"` + marker + `"}`},
		{"other version", `{"version":2,"client_id":"` + marker + `"}`},
		{"malformed digest", `{"version":1,"client_id":"` + testClientID + `","families":{` + family +
			`},"refresh_token_sha256":{"` + marker + `":{"family":"f1","expires_at":"2030-02-01T00:00:00Z"}}}`},
		{"unknown family", `{"version":1,"client_id":"` + testClientID + `","families":{},"refresh_token_sha256":{"` +
			digest + `":{"family":"` + marker + `","expires_at":"2030-02-01T00:00:00Z"}}}`},
		{"invalid username", `{"version":1,"client_id":"` + testClientID + `","families":{"f1":{"username":"` + marker +
			` !","scopes":["openid"],"auth_time":"2030-01-01T00:00:00Z","expires_at":"2030-02-01T00:00:00Z"}}}`},
		{"unsupported scope", `{"version":1,"client_id":"` + testClientID + `","families":{"f1":{"username":"demo","scopes":["` +
			marker + `"],"auth_time":"2030-01-01T00:00:00Z","expires_at":"2030-02-01T00:00:00Z"}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "demo-provider.json")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := New(Options{
				Issuer:       "http://127.0.0.1:8080/demo",
				ClientID:     testClientID,
				ClientSecret: testClientSecret,
				RedirectURIs: []string{"http://127.0.0.1:8080/auth/callback"},
				SigningKey:   testKey(),
				StateFile:    path,
				Now:          newTestClock().Now,
			})
			if !errors.Is(err, ErrCorruptState) {
				t.Fatalf("New: got %v, want ErrCorruptState", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			if strings.Contains(err.Error(), marker) {
				t.Errorf("error %q quotes the file", err)
			}
			// Nothing was written over the file: the person can look at it.
			if got, _ := os.ReadFile(path); string(got) != tc.content {
				t.Error("the corrupt file was changed")
			}
		})
	}
}

func TestStateFileUnreadable(t *testing.T) {
	dir := t.TempDir() // a folder where a file is expected
	_, err := New(Options{
		Issuer:       "http://127.0.0.1:8080/demo",
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		RedirectURIs: []string{"http://127.0.0.1:8080/auth/callback"},
		SigningKey:   testKey(),
		StateFile:    dir,
	})
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("New: got %v, want an error naming %s", err, dir)
	}
}

func TestStateFileOfAnotherClientIsIgnored(t *testing.T) {
	e, _ := newPersistentEnv(t, nil)
	rt := e.mustTokens(t, "openid offline_access", "demo").str("refresh_token")
	o := e.opts
	o.ClientID = "another-client"
	p, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, _, families, refresh, _ := p.stateSizes(); families != 0 || refresh != 0 {
		t.Errorf("another client's refresh state was loaded: families %d refresh %d", families, refresh)
	}
	// The rightful client still finds its tokens.
	e.restart(t)
	if r := e.refresh(t, rt); r.status != http.StatusOK {
		t.Errorf("refresh with the original client: %d %v", r.status, r.body)
	}
}

func TestStateFileDropsExpiredState(t *testing.T) {
	e, path := newPersistentEnv(t, func(o *Options) { o.RefreshTokenTTL = time.Hour })
	old := e.mustTokens(t, "openid offline_access", "demo")
	e.refresh(t, old.str("refresh_token"))
	e.revoke(t, old.str("access_token"))

	e.clock.Advance(time.Hour)
	e.restart(t)
	if _, _, families, refresh, revoked := e.p.stateSizes(); families+refresh+revoked != 0 {
		t.Errorf("expired state loaded: families %d refresh %d revoked %d", families, refresh, revoked)
	}

	// The next save leaves the expired family out of the file.
	e.mustTokens(t, "openid offline_access", "demo")
	var saved savedState
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &saved); err != nil {
		t.Fatal(err)
	}
	if len(saved.Families) != 1 || len(saved.RefreshTokens) != 1 || len(saved.RevokedAccessTokens) != 0 {
		t.Errorf("file holds %d families, %d refresh tokens, %d revoked access tokens; want 1, 1, 0",
			len(saved.Families), len(saved.RefreshTokens), len(saved.RevokedAccessTokens))
	}
}

func TestStateFileBoundsRotatedTokens(t *testing.T) {
	e, _ := newPersistentEnv(t, nil)
	rts := []string{e.mustTokens(t, "offline_access", "demo").str("refresh_token")}
	for range maxSavedRotations + 2 {
		// Rotations happen at different times; the newest are kept.
		e.clock.Advance(time.Second)
		r := e.refresh(t, rts[len(rts)-1])
		if r.status != http.StatusOK {
			t.Fatalf("refresh: %d %v", r.status, r.body)
		}
		rts = append(rts, r.str("refresh_token"))
	}

	e.restart(t)
	if _, _, families, refresh, _ := e.p.stateSizes(); families != 1 || refresh != maxSavedRotations+1 {
		t.Fatalf("loaded families %d refresh tokens %d, want 1 and %d", families, refresh, maxSavedRotations+1)
	}
	// The oldest token is forgotten: refused, but the family lives on.
	if r := e.refresh(t, rts[0]); r.str("error") != "invalid_grant" {
		t.Fatalf("forgotten refresh token: %d %v", r.status, r.body)
	}
	if s := e.p.Stats(); s.RefreshReuses != 0 {
		t.Errorf("a forgotten token counted as reuse: %+v", s)
	}
	// The last rotated one is still known as used.
	if r := e.refresh(t, rts[len(rts)-2]); r.str("error") != "invalid_grant" || e.p.Stats().RefreshReuses != 1 {
		t.Errorf("reuse of a recent token after restart: %d %v, stats %+v", r.status, r.body, e.p.Stats())
	}
}

// TestStateFileConcurrentRefreshes refreshes many families at once: every
// save races the others, and the file must end with the newest state.
func TestStateFileConcurrentRefreshes(t *testing.T) {
	const families, rounds = 8, 4
	e, _ := newPersistentEnv(t, nil)
	latest := make([]string, families)
	for i := range latest {
		latest[i] = e.mustTokens(t, "openid offline_access", "demo").str("refresh_token")
	}
	var wg sync.WaitGroup
	for i := range latest {
		wg.Go(func() {
			for range rounds {
				r := e.refresh(t, latest[i])
				if r.status != http.StatusOK {
					t.Errorf("family %d: refresh %d %v", i, r.status, r.body)
					return
				}
				latest[i] = r.str("refresh_token")
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	e.restart(t)
	for i, rt := range latest {
		if r := e.refresh(t, rt); r.status != http.StatusOK {
			t.Errorf("family %d: newest refresh token after restart: %d %v", i, r.status, r.body)
		}
	}
}

// TestStateFileSaveFailureKeepsServing shows a folder that cannot be
// written does not break refresh, and the log line carries no token.
func TestStateFileSaveFailureKeepsServing(t *testing.T) {
	var logs syncBuffer
	path := filepath.Join(t.TempDir(), "missing-folder", "demo-provider.json")
	e := newEnv(t, func(o *Options) {
		o.StateFile = path
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	first := e.mustTokens(t, "openid offline_access", "demo")
	second := e.refresh(t, first.str("refresh_token"))
	if second.status != http.StatusOK {
		t.Fatalf("refresh with an unwritable state file: %d %v", second.status, second.body)
	}
	out := logs.String()
	if !strings.Contains(out, "saving refresh state failed") || !strings.Contains(out, path) {
		t.Errorf("save failure not logged with the file name:\n%s", out)
	}
	for _, s := range []string{first.str("refresh_token"), second.str("refresh_token"), first.str("access_token")} {
		if strings.Contains(out, s) {
			t.Error("a token reached the log")
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestStateFileWriteNeverGoesBack: saves run outside the provider's lock,
// so an older snapshot can reach the file after a newer one; it must not
// replace it.
func TestStateFileWriteNeverGoesBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo-provider.json")
	f := &stateFile{path: path}
	if err := f.write(2, []byte("newer")); err != nil {
		t.Fatal(err)
	}
	if err := f.write(1, []byte("older")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "newer" {
		t.Errorf("file holds %q after a late older snapshot", got)
	}
	if err := f.write(3, []byte("newest")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "newest" {
		t.Errorf("file holds %q, want the newest snapshot", got)
	}
}
