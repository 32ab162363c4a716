package sdk_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/dromos-dev/dromos/internal/demoprovider"
	"github.com/dromos-dev/dromos/internal/testenv"
	"github.com/dromos-dev/dromos/sdk"
)

// lockedBuffer collects a child's stderr while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var banner = regexp.MustCompile(`^\s+(broker|gateway HTTP)\s+(http://\S+)`)

// startDev builds dromos and runs `dromos dev` on free ports; it returns
// the broker and gateway URLs and the process's stderr.
func startDev(t *testing.T) (brokerURL, gatewayURL string, logs *lockedBuffer) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dromos")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/dromos-dev/dromos/cmd/dromos").CombinedOutput(); err != nil {
		t.Fatalf("building dromos: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "dev", "--data-dir", t.TempDir(), "--broker-port", "0", "--gateway-port", "0", "--grpc-port", "0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs = &lockedBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	urls := make(chan [2]string, 1)
	go func() {
		var b string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := banner.FindStringSubmatch(sc.Text()); m != nil {
				if m[1] == "broker" {
					b = m[2]
				} else {
					urls <- [2]string{b, m[2]}
				}
			}
		}
	}()
	select {
	case u := <-urls:
		return u[0], u[1], logs
	case <-time.After(60 * time.Second):
		t.Fatalf("dromos dev printed no banner; stderr:\n%s", logs)
	}
	return "", "", nil
}

// approve plays the user at the demo provider's consent page.
func approve(t *testing.T, authURL, username string) {
	t.Helper()
	b := testenv.NewBrowser(t)
	page, body, status := b.Get(authURL)
	if status != 200 {
		t.Fatalf("consent page: %d", status)
	}
	action, form, err := testenv.Form(page, body)
	if err != nil {
		t.Fatal(err)
	}
	form.Set("username", username)
	form.Set("decision", "approve")
	if final, _, status := b.PostForm(action, form); status != 200 || final.Query().Get("status") != "success" {
		t.Fatalf("consent ended at %d %s", status, final.Path)
	}
}

func TestAgentAgainstDromosDev(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs dromos dev")
	}
	brokerURL, gatewayURL, logs := startDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var logBuf lockedBuffer
	client, err := sdk.New(gatewayURL, sdk.WithLogger(slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	providers, err := client.ListProviders(ctx)
	if err != nil || !hasProvider(providers, "demo") {
		t.Fatalf("providers %v, %v", providers, err)
	}
	conn, err := client.RequestConnection(ctx, sdk.RequestConnectionInput{
		UserID: "alice", ProviderName: "demo", Scopes: []string{"openid", "email", "offline_access"},
		ReturnURL: brokerURL + "/dev/return", Metadata: map[string]any{"team": "qa", "priority": 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.GetToken(ctx, conn.ConnectionID); !errors.Is(err, sdk.ErrPending) {
		t.Fatalf("token before consent: %v", err)
	}
	if _, err := client.GetToken(ctx, "00000000-0000-4000-8000-000000000000"); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("token of an unknown connection: %v", err)
	}

	approve(t, conn.AuthURL, "alice")
	if err := client.WaitForActive(ctx, conn.ConnectionID, sdk.WaitOptions{Interval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	// Metadata of any JSON type comes back as it was sent.
	if st, err := client.CheckConnection(ctx, conn.ConnectionID); err != nil || len(st.Metadata) != 2 ||
		string(st.Metadata["team"]) != `"qa"` || string(st.Metadata["priority"]) != `2` {
		t.Fatalf("status %+v, %v", st, err)
	}
	tok, err := client.GetToken(ctx, conn.ConnectionID)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.IDToken == "" || tok.Provider != "demo" || tok.ExpiresAt.IsZero() {
		t.Fatalf("token %v", tok)
	}
	if _, leaked := tok.Extra["refresh_token"]; leaked {
		t.Fatal("refresh token handed to the agent")
	}

	wantSub, wantEmail := demoprovider.Subject("alice"), "alice@"+demoprovider.EmailDomain
	for name, hc := range map[string]*http.Client{
		"oauth2.NewClient(TokenSource)": oauth2.NewClient(ctx, client.TokenSource(ctx, conn.ConnectionID)),
		"HTTPClient":                    client.HTTPClient(ctx, conn.ConnectionID),
	} {
		resp, err := hc.Get(brokerURL + "/demo/userinfo")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var info struct{ Sub, Email string }
		err = json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || info.Sub != wantSub || info.Email != wantEmail {
			t.Fatalf("%s: userinfo %d %+v %v", name, resp.StatusCode, info, err)
		}
	}

	// Step-up: more scopes on the same connection; the old token serves
	// until the user approves, then the new one does.
	more, err := client.AddScopes(ctx, sdk.AddScopesInput{ConnectionID: conn.ConnectionID, UserID: "alice",
		ProviderName: "demo", Scopes: []string{"demo.write"}, ReturnURL: brokerURL + "/dev/return"})
	if err != nil {
		t.Fatal(err)
	}
	if more.ConnectionID != conn.ConnectionID || !slices.Contains(more.Scopes, "demo.write") || !slices.Contains(more.Scopes, "email") {
		t.Fatalf("step-up answer: id %s scopes %v", more.ConnectionID, more.Scopes)
	}
	if during, err := client.GetToken(ctx, conn.ConnectionID); err != nil || during.AccessToken != tok.AccessToken {
		t.Fatalf("token during the step-up: %v", err)
	}
	approve(t, more.AuthURL, "alice")
	if err := client.WaitForStepUp(ctx, conn.ConnectionID, sdk.WaitOptions{Interval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	stepped, err := client.GetToken(ctx, conn.ConnectionID)
	if err != nil || stepped.AccessToken == tok.AccessToken || !strings.Contains(stepped.Scope, "demo.write") {
		t.Fatalf("token after the step-up: scope %q, err %v", stepped.Scope, err)
	}

	// Forced refresh: the broker may not offer it yet (501 not_implemented,
	// see docs/GATEWAY.md); then the SDK must say so with ErrNotSupported.
	fresh, err := client.Refresh(ctx, conn.ConnectionID)
	switch {
	case errors.Is(err, sdk.ErrNotSupported):
		t.Log("forced refresh not offered by this broker")
	case err != nil:
		t.Fatalf("refresh: %v", err)
	case fresh.AccessToken == "" || fresh.AccessToken == tok.AccessToken:
		t.Fatal("forced refresh returned no new token")
	}

	// The gateway may not have a DELETE route yet; either way the answer
	// must be typed, and a deleted connection must be gone.
	switch err := client.DeleteConnection(ctx, conn.ConnectionID); {
	case errors.Is(err, sdk.ErrNotSupported):
		t.Log("this gateway has no DELETE route")
	case err == nil:
		if _, err := client.CheckConnection(ctx, conn.ConnectionID); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("deleted connection still answers: %v", err)
		}
	default:
		t.Fatalf("delete: %v", err)
	}

	for where, text := range map[string]string{"SDK log": logBuf.String(), "dromos log": logs.String()} {
		if strings.Contains(text, tok.AccessToken) || strings.Contains(text, conn.State) || strings.Contains(text, stepped.AccessToken) ||
			(fresh != nil && strings.Contains(text, fresh.AccessToken)) {
			t.Fatalf("%s contains a token or state", where)
		}
	}
	if !strings.Contains(logBuf.String(), "/v1/token/{id}") {
		t.Fatal("the SDK logged nothing")
	}
}

func hasProvider(ps []sdk.Provider, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}
