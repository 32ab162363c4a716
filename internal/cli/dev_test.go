package cli_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/testenv"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dromos-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "dromos")
	if out, err := exec.Command("go", "build", "-o", binary, "github.com/dromos-dev/dromos/cmd/dromos").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building dromos: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// devProcess is a running `dromos dev`.
type devProcess struct {
	cmd        *exec.Cmd
	gatewayURL string
	brokerURL  string
	stderr     *bytes.Buffer
}

var bannerLine = regexp.MustCompile(`^\s+(broker|gateway HTTP)\s+(http://\S+)`)

// startDev runs `dromos dev` on free ports in dataDir (with extra flags)
// and waits for its banner.
func startDev(t *testing.T, dataDir string, extra ...string) *devProcess {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"dev", "--data-dir", dataDir, "--broker-port", "0", "--gateway-port", "0", "--grpc-port", "0"}, extra...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &devProcess{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stop() })
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := bannerLine.FindStringSubmatch(sc.Text()); m != nil {
				if m[1] == "broker" {
					p.brokerURL = m[2]
				} else {
					p.gatewayURL = m[2]
					close(found)
				}
			}
		}
	}()
	select {
	case <-found:
	case <-time.After(30 * time.Second):
		t.Fatalf("dromos dev printed no banner; stderr:\n%s", p.stderr)
	}
	return p
}

func (p *devProcess) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

func postJSON(t *testing.T, u string, body any, out any) int {
	t.Helper()
	raw, _ := json.Marshal(body)
	resp, err := http.Post(u, "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func getJSON(t *testing.T, u string, out any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		_ = json.Unmarshal(b, out)
	}
	return resp.StatusCode
}

// consentThroughDemo requests a connection through the gateway, opens the
// demo provider's consent page, and submits decision; it returns the
// connection id and the query the browser lands with.
func consentThroughDemo(t *testing.T, p *devProcess, decision string) (string, url.Values) {
	t.Helper()
	var req struct {
		AuthURL      string `json:"authUrl"`
		ConnectionID string `json:"connection_id"`
	}
	st := postJSON(t, p.gatewayURL+"/v1/request-connection", map[string]any{
		"user_id": "alice", "provider_name": "demo", "scopes": []string{"openid", "email", "offline_access"},
		"return_url": p.brokerURL + "/dev/return?from=test",
	}, &req)
	if st != 200 || req.AuthURL == "" {
		t.Fatalf("request-connection: %d", st)
	}
	b := testenv.NewBrowser(t)
	page, body, status := b.Get(req.AuthURL)
	if status != 200 || !strings.Contains(body, "Approve") || !strings.Contains(body, "Deny") {
		t.Fatalf("consent page: %d at %s", status, page.Path)
	}
	action, form, err := testenv.Form(page, body)
	if err != nil {
		t.Fatal(err)
	}
	form.Set("username", "alice")
	form.Set("decision", decision)
	final, _, status := b.PostForm(action, form)
	if status != 200 || final.Path != "/dev/return" {
		t.Fatalf("landed on %d %s", status, final.Path)
	}
	return req.ConnectionID, final.Query()
}

func TestDevEndToEnd(t *testing.T) {
	data := t.TempDir()
	p := startDev(t, data)

	id, q := consentThroughDemo(t, p, "approve")
	if q.Get("status") != "success" || q.Get("connection_id") != id || q.Get("from") != "test" {
		t.Fatalf("return query %v", q)
	}
	var check map[string]any
	if st := getJSON(t, p.gatewayURL+"/v1/check-connection/"+id, &check); st != 200 || check["status"] != "active" {
		t.Fatalf("check: %d %v", st, check)
	}
	var tok map[string]any
	if st := getJSON(t, p.gatewayURL+"/v1/token/"+id, &tok); st != 200 {
		t.Fatalf("token: %d %v", st, tok)
	}
	access, _ := tok["access_token"].(string)
	if access == "" || tok["provider"] != "demo" || tok["id_token"] == nil {
		t.Fatalf("token body %v", tok)
	}
	if _, leaked := tok["refresh_token"]; leaked {
		t.Fatal("refresh token handed to the agent")
	}

	// A forced refresh (what an agent does after a provider 401) gets a new
	// token from the demo provider, whose refresh tokens rotate.
	var fresh map[string]any
	if st := postJSON(t, p.gatewayURL+"/v1/refresh/"+id, map[string]any{}, &fresh); st != 200 || fresh["access_token"] == access || fresh["access_token"] == nil {
		t.Fatalf("refresh: %d %v", st, fresh)
	}
	access = fresh["access_token"].(string)

	// Deny: the connection fails and the browser is told why.
	denied, q := consentThroughDemo(t, p, "deny")
	if q.Get("status") != "error" || q.Get("error") != "access_denied" || q.Get("connection_id") != denied {
		t.Fatalf("deny query %v", q)
	}
	if st := getJSON(t, p.gatewayURL+"/v1/check-connection/"+denied, &check); st != 200 || check["status"] != "failed" {
		t.Fatalf("denied check: %d %v", st, check)
	}

	// Restart on the same data folder: the connection and its token survive.
	p.stop()
	if strings.Contains(p.stderr.String(), access) {
		t.Fatal("access token in dev logs")
	}
	p2 := startDev(t, data)
	var again map[string]any
	if st := getJSON(t, p2.gatewayURL+"/v1/token/"+id, &again); st != 200 || again["access_token"] != access {
		t.Fatalf("after restart: %d %v", st, again)
	}
	// The demo provider kept its refresh state too: the rotated refresh
	// token still refreshes, twice.
	for range 2 {
		var next map[string]any
		if st := postJSON(t, p2.gatewayURL+"/v1/refresh/"+id, map[string]any{}, &next); st != 200 || next["access_token"] == access {
			t.Fatalf("refresh after restart: %d %v", st, next)
		}
		access = next["access_token"].(string)
	}
	if st := getJSON(t, p2.gatewayURL+"/v1/check-connection/"+id, &check); st != 200 || check["status"] != "active" {
		t.Fatalf("after refreshes: %d %v", st, check)
	}
}

// DNS rebinding: a web page on attacker.example, whose name then resolves
// to 127.0.0.1, would reach the open dev broker and gateway as its own
// origin. Both listeners answer only requests addressed to a loopback name
// or the host dev announced.
func TestDevRefusesForeignHost(t *testing.T) {
	p := startDev(t, t.TempDir())
	get := func(rawURL, host string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, rawURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	for _, base := range []string{p.brokerURL, p.gatewayURL} {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		port := u.Port()
		path := "/connections"
		if base == p.gatewayURL {
			path = "/v1/providers"
		}
		for _, host := range []string{"attacker.example:" + port, "attacker.example", "ATTACKER.example:" + port,
			"localhost.attacker.example:" + port, "127.0.0.1.nip.io:" + port} {
			st, body := get(base+path, host)
			if st != http.StatusMisdirectedRequest || body["code"] != "misdirected_request" || body["message"] == "" {
				t.Errorf("%s%s with Host %s: %d %v", base, path, host, st, body)
			}
		}
		for _, host := range []string{"", "localhost:" + port, "LOCALHOST:" + port, "127.0.0.1:" + port, "localhost"} {
			if st, body := get(base+path, host); st != http.StatusOK {
				t.Errorf("%s%s with Host %q: %d %v", base, path, host, st, body)
			}
		}
	}
	// A rebound page posting a connection request is refused too, and
	// nothing is stored.
	gw, _ := url.Parse(p.gatewayURL)
	raw, _ := json.Marshal(map[string]any{"user_id": "victim", "provider_name": "demo", "scopes": []string{"openid"},
		"return_url": "http://attacker.example/"})
	req, _ := http.NewRequest(http.MethodPost, p.gatewayURL+"/v1/request-connection", bytes.NewReader(raw))
	req.Host = "attacker.example:" + gw.Port()
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("rebound request-connection: %d", resp.StatusCode)
	}
	var conns map[string]any
	if st := getJSON(t, p.brokerURL+"/connections", &conns); st != 200 {
		t.Fatalf("connections: %d", st)
	}
	if list, _ := conns["connections"].([]any); len(list) != 0 {
		t.Fatalf("connections after refused requests: %v", conns)
	}
}
