package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/cli"
	"github.com/dromos-dev/dromos/internal/demoprovider"
	"github.com/dromos-dev/dromos/internal/testenv"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCLI runs dromos in-process and returns its output and exit code.
func runCLI(t *testing.T, environ []string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, &out, &errb, environ)
	return out.String(), errb.String(), code
}

// mustCLI runs dromos and fails the test unless it exits 0.
func mustCLI(t *testing.T, environ []string, args ...string) string {
	t.Helper()
	out, errOut, code := runCLI(t, environ, args...)
	if code != 0 {
		t.Fatalf("dromos %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func decodeInto(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, s)
	}
}

// hasRow reports whether a table has a line holding all the cells.
func hasRow(table string, cells ...string) bool {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		ok := true
		for _, c := range cells {
			ok = ok && containsField(f, c)
		}
		if ok {
			return true
		}
	}
	return false
}

func containsField(f []string, c string) bool {
	for _, x := range f {
		if x == c {
			return true
		}
	}
	return false
}

var authURLLine = regexp.MustCompile(`(?m)^  (https?://\S+)$`)

// connectThroughCLI runs `dromos connect`, plays the user at the demo
// consent page once the URL is printed, and returns the command's output.
func connectThroughCLI(t *testing.T, p *devProcess, environ []string, args ...string) string {
	t.Helper()
	out, errb := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() { done <- cli.Run(ctx, append([]string{"connect"}, args...), out, errb, environ) }()
	var authURL string
	for authURL == "" {
		if m := authURLLine.FindStringSubmatch(out.String()); m != nil {
			authURL = m[1]
			break
		}
		select {
		case code := <-done:
			t.Fatalf("connect ended (%d) before printing a consent URL:\n%s\n%s", code, out, errb)
		case <-ctx.Done():
			t.Fatalf("no consent URL printed:\n%s", out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	b := testenv.NewBrowser(t)
	page, body, status := b.Get(authURL)
	if status != 200 {
		t.Fatalf("consent page %d", status)
	}
	action, form, err := testenv.Form(page, body)
	if err != nil {
		t.Fatal(err)
	}
	form.Set("username", "alice")
	form.Set("decision", "approve")
	if _, _, status := b.PostForm(action, form); status != 200 {
		t.Fatalf("consent answered %d", status)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("connect exit %d:\n%s\n%s", code, out, errb)
		}
	case <-ctx.Done():
		t.Fatalf("connect did not finish:\n%s", out)
	}
	if errb.String() != "" {
		t.Fatalf("connect wrote to a non-terminal stderr:\n%s", errb)
	}
	return out.String()
}

var connectedID = regexp.MustCompile(`(?m)^CONNECTION ID\s+([0-9a-f-]{36})$`)

func TestOpsAgainstDev(t *testing.T) {
	p := startDev(t, t.TempDir())
	env := []string{"DROMOS_BROKER_URL=" + p.brokerURL, "DROMOS_GATEWAY_URL=" + p.gatewayURL}
	const secret = "s3cret-never-printed"

	t.Run("providers list", func(t *testing.T) {
		out := mustCLI(t, env, "providers", "list")
		if !hasRow(out, "NAME", "SCOPES") || !hasRow(out, "demo", "yes") {
			t.Fatalf("table:\n%s", out)
		}
		var ps []map[string]any
		decodeInto(t, mustCLI(t, env, "providers", "list", "--json"), &ps)
		if len(ps) != 1 || ps[0]["name"] != "demo" || ps[0]["has_client_secret"] != true {
			t.Fatalf("json %v", ps)
		}
		if _, leaked := ps[0]["client_secret"]; leaked {
			t.Fatal("client_secret in the listing")
		}
	})

	t.Run("providers add from flags", func(t *testing.T) {
		out := mustCLI(t, env, "providers", "add", "--name", "static1", "--client-id", "cid",
			"--client-secret", secret, "--auth-url", "https://idp.example/authorize", "--token-url", "https://idp.example/token",
			"--scopes", "read,write", "--allowed-scopes", "read write admin:*", "--aliases", "Static-One", "--auth-param", "audience=api")
		if !strings.HasPrefix(out, "provider static1 added (id ") {
			t.Fatalf("add said %q", out)
		}
		show := mustCLI(t, env, "providers", "show", "STATIC-ONE", "--json")
		var prov map[string]any
		decodeInto(t, show, &prov)
		if prov["name"] != "static1" || prov["auth_url"] != "https://idp.example/authorize" || prov["has_client_secret"] != true ||
			prov["enable_discovery"] == true {
			t.Fatalf("stored %v", prov)
		}
		table := mustCLI(t, env, "providers", "show", "static1")
		if !hasRow(table, "CLIENT", "SECRET", "set", "(never", "shown)") || !hasRow(table, "SCOPES", "read", "write") ||
			!hasRow(table, "ALLOWED", "SCOPES", "read", "write", "admin:*") {
			t.Fatalf("show table:\n%s", table)
		}
		if strings.Contains(show+table+out, secret) {
			t.Fatal("the client secret was printed")
		}
	})

	t.Run("providers add from a template", func(t *testing.T) {
		var prov map[string]any
		decodeInto(t, mustCLI(t, env, "providers", "add", "--template", "github", "--client-id", "gh-cid",
			"--client-secret", secret, "--json"), &prov)
		if prov["name"] != "github" || prov["template"] != "github" || prov["auth_url"] != "https://github.com/login/oauth/authorize" ||
			prov["has_client_secret"] != true {
			t.Fatalf("added %v", prov)
		}
		// Explicit flags win over the template.
		decodeInto(t, mustCLI(t, env, "providers", "add", "--template", "atlassian", "--name", "jira-test", "--client-id", "c",
			"--client-secret", secret, "--resources-url", "https://proxy.example/resources", "--json"), &prov)
		if prov["name"] != "jira-test" || prov["resources_url"] != "https://proxy.example/resources" ||
			prov["token_url"] != "https://auth.atlassian.com/oauth/token" {
			t.Fatalf("added %v", prov)
		}
		// The template's token request headers, and one added by flag.
		decodeInto(t, mustCLI(t, env, "providers", "add", "--template", "notion", "--client-id", "n",
			"--client-secret", secret, "--token-header", "X-Trace=on", "--json"), &prov)
		headers, _ := prov["token_request_headers"].(map[string]any)
		if headers["Notion-Version"] != "2025-09-03" || headers["X-Trace"] != "on" {
			t.Fatalf("token_request_headers %v", prov["token_request_headers"])
		}
		list := mustCLI(t, env, "providers", "catalog")
		if !hasRow(list, "github", "GitHub", "yes") {
			t.Fatalf("catalog does not show github as configured:\n%s", list)
		}
	})

	t.Run("providers add from file", func(t *testing.T) {
		dir := t.TempDir()
		profile := filepath.Join(dir, "p.json")
		secretFile := filepath.Join(dir, "secret")
		_ = os.WriteFile(profile, []byte(`{"profile":{"name":"fromfile","client_id":"c2",
			"auth_url":"https://idp2.example/a","token_url":"https://idp2.example/t","scopes":["x"]}}`), 0o600)
		_ = os.WriteFile(secretFile, []byte(secret+"\n"), 0o600)
		var prov map[string]any
		decodeInto(t, mustCLI(t, env, "providers", "add", "--file", profile, "--client-secret-file", secretFile, "--json"), &prov)
		if prov["name"] != "fromfile" || prov["has_client_secret"] != true || prov["id"] == "" {
			t.Fatalf("added %v", prov)
		}
		if _, errOut, code := runCLI(t, env, "providers", "add", "--file", profile, "--name", "x"); code != 1 ||
			!strings.Contains(errOut, "--file cannot be combined with --name") {
			t.Fatalf("mixed flags: %d %s", code, errOut)
		}
	})

	t.Run("providers add refusals", func(t *testing.T) {
		tests := []struct {
			name string
			args []string
			want string
		}{
			{"duplicate name", []string{"--name", "static1", "--client-id", "c", "--client-secret", "s",
				"--auth-url", "https://a.example/a", "--token-url", "https://a.example/t"}, "409 already_exists"},
			{"invalid profile", []string{"--name", "Bad Name!", "--client-id", "c"}, "400 bad_request"},
			{"missing flags", []string{"--name", "x"}, "--client-id and --name or --template are required"},
			{"param without template", []string{"--name", "x", "--client-id", "c", "--param", "domain=a.example"}, "--param needs --template"},
			{"unknown template", []string{"--template", "nosuch", "--client-id", "c", "--client-secret", "s"}, "400"},
			{"unknown template parameter", []string{"--template", "slack", "--client-id", "c", "--client-secret", "s",
				"--param", "tenant=x"}, "400 bad_request"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, errOut, code := runCLI(t, env, append([]string{"providers", "add"}, tc.args...)...)
				if code != 1 || !strings.Contains(errOut, tc.want) {
					t.Fatalf("exit %d, stderr %q", code, errOut)
				}
			})
		}
	})

	t.Run("providers remove", func(t *testing.T) {
		if out := mustCLI(t, env, "providers", "remove", "fromfile"); !strings.HasPrefix(out, "provider fromfile removed") {
			t.Fatalf("remove said %q", out)
		}
		if _, errOut, code := runCLI(t, env, "providers", "show", "fromfile"); code != 1 || !strings.Contains(errOut, `no provider named "fromfile"`) {
			t.Fatalf("after remove: %d %s", code, errOut)
		}
	})

	// /v1/providers lists names only; an alias still gets the provider's
	// default scopes (static1, alias Static-One: read write).
	t.Run("connect by alias without --scopes", func(t *testing.T) {
		out, errb := &syncBuffer{}, &syncBuffer{}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done := make(chan int, 1)
		go func() {
			done <- cli.Run(ctx, []string{"connect", "--provider", "STATIC-one", "--user", "bob"}, out, errb, env)
		}()
		var authURL string
		for authURL == "" {
			if m := authURLLine.FindStringSubmatch(out.String()); m != nil {
				authURL = m[1]
				break
			}
			select {
			case code := <-done:
				t.Fatalf("connect ended (%d) before printing a consent URL:\n%s\n%s", code, out, errb)
			case <-ctx.Done():
				t.Fatalf("no consent URL printed:\n%s", out)
			case <-time.After(20 * time.Millisecond):
			}
		}
		cancel()
		<-done
		// The consent URL leads to the provider with its default scopes.
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Get(authURL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || loc.Host != "idp.example" || loc.Query().Get("scope") != "read write" {
			t.Fatalf("consent start answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})

	var id string
	t.Run("connect", func(t *testing.T) {
		out := connectThroughCLI(t, p, env, "--provider", "demo", "--user", "alice", "--scopes", "openid email")
		m := connectedID.FindStringSubmatch(out)
		if m == nil || !strings.Contains(out, "Connected.") || !regexp.MustCompile(`(?m)^ACCESS TOKEN\s+\S{6}…$`).MatchString(out) {
			t.Fatalf("connect output:\n%s", out)
		}
		id = m[1]
	})
	if id == "" {
		t.Fatal("no connection to inspect")
	}

	t.Run("connections list", func(t *testing.T) {
		out := mustCLI(t, env, "connections", "list")
		if !hasRow(out, "ID", "STATUS", "PROVIDER", "USER") || !hasRow(out, id, "active", "demo", "alice") {
			t.Fatalf("table:\n%s", out)
		}
		var cs []map[string]any
		decodeInto(t, mustCLI(t, env, "connections", "list", "--provider", "demo", "--status", "active", "--json"), &cs)
		if len(cs) != 1 || cs[0]["connection_id"] != id || cs[0]["user_id"] != "alice" {
			t.Fatalf("filtered json %v", cs)
		}
		decodeInto(t, mustCLI(t, env, "connections", "list", "--user", "nobody", "--json"), &cs)
		if len(cs) != 0 {
			t.Fatalf("--user nobody listed %v", cs)
		}
	})

	t.Run("connections show", func(t *testing.T) {
		out := mustCLI(t, env, "connections", "show", id)
		email := "alice@" + demoprovider.EmailDomain
		if !hasRow(out, "STATUS", "active") || !hasRow(out, "EMAIL", email) || !hasRow(out, "SUBJECT", demoprovider.Subject("alice")) {
			t.Fatalf("show:\n%s", out)
		}
		var c map[string]any
		decodeInto(t, mustCLI(t, env, "connections", "show", "--json", id), &c)
		if c["connection_id"] != id || c["status"] != "active" {
			t.Fatalf("json %v", c)
		}
	})

	t.Run("token", func(t *testing.T) {
		var gw map[string]any
		if st := getJSON(t, p.gatewayURL+"/v1/token/"+id, &gw); st != 200 {
			t.Fatalf("gateway token %d", st)
		}
		access := gw["access_token"].(string)
		table := mustCLI(t, env, "token", id)
		if strings.Contains(table, access) || !hasRow(table, "ACCESS", "TOKEN", access[:6]+"…") || !hasRow(table, "PROVIDER", "demo") {
			t.Fatalf("redacted table:\n%s", table)
		}
		var red, full map[string]any
		decodeInto(t, mustCLI(t, env, "token", id, "--json"), &red)
		decodeInto(t, mustCLI(t, env, "token", "--reveal", "--json", id), &full)
		if red["access_token"] != access[:6]+"…" || red["redacted"] != true || strings.Contains(red["id_token"].(string), ".") {
			t.Fatalf("redacted json %v", red)
		}
		if full["access_token"] != access || full["redacted"] != false || full["id_token"] != gw["id_token"] || full["expires_at"] == nil {
			t.Fatalf("revealed json %v", full)
		}
	})

	t.Run("connections delete", func(t *testing.T) {
		if out := mustCLI(t, env, "connections", "delete", id); out != "connection "+id+" deleted\n" {
			t.Fatalf("delete said %q", out)
		}
		for _, args := range [][]string{{"connections", "show", id}, {"token", id}} {
			if _, errOut, code := runCLI(t, env, args...); code != 1 || !strings.Contains(errOut, "404 not_found") {
				t.Fatalf("%v after delete: %d %s", args, code, errOut)
			}
		}
	})
}
