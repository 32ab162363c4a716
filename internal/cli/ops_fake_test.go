package cli_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestOpsHelp(t *testing.T) {
	env := []string{"DROMOS_API_KEY=key-from-env-SECRET", "DROMOS_GATEWAY_API_KEY=gw-key-SECRET"}
	for _, args := range [][]string{
		{"providers", "--help"}, {"providers", "add", "--help"}, {"providers", "list", "-h"},
		{"providers", "show", "--help"}, {"providers", "remove", "--help"},
		{"connections", "help"}, {"connections", "list", "--help"}, {"connections", "show", "--help"},
		{"connections", "delete", "--help"}, {"token", "--help"}, {"connect", "--help"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errOut, code := runCLI(t, env, args...)
			want := "Usage: dromos " + args[0]
			if code != 0 || !strings.HasPrefix(out, want) {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			if strings.Contains(out+errOut, "SECRET") {
				t.Fatal("help printed a key from the environment")
			}
		})
	}
}

func TestOpsUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"providers"}, "a command is required"},
		{[]string{"providers", "frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"token"}, "expected one connection ID"},
		{[]string{"connections", "show", "a", "b"}, "expected one connection ID"},
		{[]string{"connections", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"connections", "list", "--limit", "0"}, "--limit must be from 1 to 1000"},
		{[]string{"connect", "--user", "u"}, "--user and one of --provider and --mcp are required"},
		{[]string{"connect", "--user", "u", "--provider", "p", "--mcp", "https://m.example/mcp"}, "--user and one of --provider and --mcp are required"},
		{[]string{"providers", "list", "--broker", "ftp://x"}, "--broker must be an http(s) URL"},
		{[]string{"providers", "add", "--client-secret", "a", "--client-secret-file", "b", "--name", "n", "--client-id", "c"}, "not both"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, errOut, code := runCLI(t, nil, tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
		})
	}
}

// fakeBroker answers the operator routes with canned bodies and records
// the key each request carried.
type fakeBroker struct {
	srv  *httptest.Server
	mu   sync.Mutex
	keys []string
}

func newFakeBroker(t *testing.T, wantKey string) *fakeBroker {
	f := &fakeBroker{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /providers", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"providers":[{"id":"p1","name":"gh","display_name":"GitHub","auth_url":"https://github.com/login/oauth/authorize",
			"client_id":"c","has_client_secret":true,"scopes":["repo"],"token_lifetime_seconds":0,"future_field":{"x":1}}]}`))
	})
	mux.HandleFunc("GET /connections/{id}/token", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"access_token":"gho_abcdefghijklmnop","token_type":"bearer","expires_in":null,"expires_at":null,
			"scope":"repo","provider":"gh","refresh_token":"never-shown-refresh"}`))
	})
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-API-Key")
		f.mu.Lock()
		f.keys = append(f.keys, key)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if key != wantKey {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"code":"unauthorized","message":"missing or invalid API key"}`))
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeBroker) lastKey() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.keys) == 0 {
		return ""
	}
	return f.keys[len(f.keys)-1]
}

func TestOpsBrokerSettings(t *testing.T) {
	f := newFakeBroker(t, "right-key")
	tests := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		wantKey  string
		wantErr  string
	}{
		{"URL and key from the environment", []string{"DROMOS_BROKER_URL=" + f.srv.URL, "DROMOS_API_KEY=right-key"}, nil, 0, "right-key", ""},
		{"flags win over the environment", []string{"DROMOS_BROKER_URL=http://127.0.0.1:1", "DROMOS_API_KEY=wrong"},
			[]string{"--broker", f.srv.URL, "--api-key", "right-key"}, 0, "right-key", ""},
		{"wrong key is reported with the broker's message", []string{"DROMOS_BROKER_URL=" + f.srv.URL, "DROMOS_API_KEY=wrong"}, nil, 1, "wrong",
			"broker answered 401 unauthorized: missing or invalid API key"},
		{"unreachable broker names the setting", []string{"DROMOS_BROKER_URL=" + closedURL(t)}, nil, 1, "", "cannot reach the broker at"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, tc.env, append([]string{"providers", "list"}, tc.args...)...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if tc.wantKey != "" && f.lastKey() != tc.wantKey {
				t.Fatalf("broker saw key %q", f.lastKey())
			}
			if code == 0 && !hasRow(out, "gh", "GitHub", "https://github.com/login/oauth/authorize", "repo", "yes", "p1") {
				t.Fatalf("table:\n%s", out)
			}
			if strings.Contains(errOut, "right-key") || strings.Contains(errOut, "wrong") {
				t.Fatal("the key was printed")
			}
		})
	}
}

func closedURL(t *testing.T) string {
	s := httptest.NewServer(http.NotFoundHandler())
	u := s.URL
	s.Close()
	return u
}

func TestOpsJSONKeepsBrokerFields(t *testing.T) {
	f := newFakeBroker(t, "")
	env := []string{"DROMOS_BROKER_URL=" + f.srv.URL}
	var ps []map[string]any
	decodeInto(t, mustCLI(t, env, "providers", "list", "--json"), &ps)
	if len(ps) != 1 || ps[0]["future_field"] == nil || ps[0]["name"] != "gh" {
		t.Fatalf("json %v", ps)
	}
}

func TestOpsTokenWithoutExpiry(t *testing.T) {
	f := newFakeBroker(t, "")
	env := []string{"DROMOS_BROKER_URL=" + f.srv.URL}
	const id = "0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b"
	table := mustCLI(t, env, "token", id)
	if !hasRow(table, "ACCESS", "TOKEN", "gho_ab…") || !hasRow(table, "EXPIRES", "never") || !hasRow(table, "ID", "TOKEN", "none") {
		t.Fatalf("table:\n%s", table)
	}
	var sum map[string]any
	decodeInto(t, mustCLI(t, env, "token", id, "--json", "--reveal"), &sum)
	if sum["access_token"] != "gho_abcdefghijklmnop" || sum["expires_at"] != nil || sum["token_type"] != "bearer" {
		t.Fatalf("json %v", sum)
	}
	for _, out := range []string{table, mustCLI(t, env, "token", id, "--reveal")} {
		if strings.Contains(out, "never-shown-refresh") {
			t.Fatal("the refresh token was printed")
		}
	}
}

// fakeGatewayFor answers connect's gateway calls; check is the status body.
func fakeGatewayFor(t *testing.T, check string, seen *map[string]any, auth *string) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/providers", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"providers":[{"name":"gh","display_name":"GitHub","scopes":["repo","read:user"]}]}`))
	})
	mux.HandleFunc("POST /v1/request-connection", func(w http.ResponseWriter, r *http.Request) {
		*auth = r.Header.Get("Authorization")
		_ = json.NewDecoder(r.Body).Decode(seen)
		_, _ = w.Write([]byte(`{"authUrl":"https://github.example/login/oauth/authorize?state=abc","connection_id":"0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b",
			"state":"abc","scopes":["repo","read:user"],"provider_id":"p1"}`))
	})
	mux.HandleFunc("GET /v1/check-connection/{id}", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(check)) })
	mux.HandleFunc("GET /v1/token/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"access_token":"gho_abcdefghijklmnop","token_type":"Bearer","scope":"repo read:user","provider":"gh"}`))
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func TestConnectAgainstFakeGateway(t *testing.T) {
	t.Run("json output, default scopes and return URL", func(t *testing.T) {
		var body map[string]any
		var auth string
		gw := fakeGatewayFor(t, `{"status":"active"}`, &body, &auth)
		env := []string{"DROMOS_GATEWAY_URL=" + gw.URL, "DROMOS_GATEWAY_API_KEY=gw-key", "DROMOS_BROKER_URL=https://broker.example/"}
		out, errOut, code := runCLI(t, env, "connect", "--provider", "gh", "--user", "u-1", "--json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var res struct {
			ConnectionID string `json:"connection_id"`
			AuthURL      string `json:"auth_url"`
			Token        struct {
				AccessToken string `json:"access_token"`
				Redacted    bool   `json:"redacted"`
			} `json:"token"`
		}
		decodeInto(t, out, &res)
		if res.ConnectionID != "0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b" || res.Token.AccessToken != "gho_ab…" || !res.Token.Redacted {
			t.Fatalf("json %+v", res)
		}
		if !strings.Contains(errOut, "https://github.example/login/oauth/authorize?state=abc") {
			t.Fatalf("consent URL not on stderr: %q", errOut)
		}
		if auth != "Bearer gw-key" || body["return_url"] != "https://broker.example/dev/return" ||
			strings.Join(anyStrings(body["scopes"]), " ") != "repo read:user" || body["user_id"] != "u-1" {
			t.Fatalf("gateway saw %q %v", auth, body)
		}
	})
	t.Run("an MCP server by URL", func(t *testing.T) {
		var body map[string]any
		var auth string
		gw := fakeGatewayFor(t, `{"status":"active"}`, &body, &auth)
		_, errOut, code := runCLI(t, nil, "connect", "--gateway", gw.URL, "--mcp", "https://mcp.example.com/mcp", "--user", "u-1",
			"--return-url", "https://app.example/done")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if body["mcp_server_url"] != "https://mcp.example.com/mcp" || body["provider_name"] != nil || body["scopes"] != nil {
			t.Fatalf("gateway saw %v", body)
		}
	})
	t.Run("denied consent fails with the reason", func(t *testing.T) {
		var body map[string]any
		var auth string
		gw := fakeGatewayFor(t, `{"status":"failed","reason":"access_denied"}`, &body, &auth)
		out, errOut, code := runCLI(t, nil, "connect", "--gateway", gw.URL, "--provider", "gh", "--user", "u-1", "--scopes", "repo",
			"--return-url", "https://app.example/done")
		if code != 1 || !strings.Contains(errOut, "failed: access_denied") || strings.Contains(out, "Connected") {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
		}
		if body["return_url"] != "https://app.example/done" || strings.Join(anyStrings(body["scopes"]), " ") != "repo" {
			t.Fatalf("gateway saw %v", body)
		}
	})
}

// A name the gateway does not list (an alias, or a typo) is looked up at
// the broker; when the broker cannot name it either, connect stops before
// creating a connection and says to give --scopes.
func TestConnectUnknownProviderNeedsScopes(t *testing.T) {
	var body map[string]any
	var auth string
	gw := fakeGatewayFor(t, `{"status":"active"}`, &body, &auth)
	f := newFakeBroker(t, "")
	out, errOut, code := runCLI(t, []string{"DROMOS_GATEWAY_URL=" + gw.URL, "DROMOS_BROKER_URL=" + f.srv.URL},
		"connect", "--provider", "nosuch", "--user", "u-1")
	if code != 1 || !strings.Contains(errOut, `no default scopes known for provider "nosuch"`) || !strings.Contains(errOut, "--scopes") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if body != nil {
		t.Fatalf("a connection was requested: %v", body)
	}
}

func anyStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// Usage after a bad flag is part of the error: it goes to stderr, so stdout
// (which --json promises to scripts) stays empty. --help still prints to
// stdout.
func TestUsageAfterBadFlagGoesToStderr(t *testing.T) {
	for _, args := range [][]string{
		{"providers", "list", "--json", "--bogus"},
		{"connections", "list", "--json", "--limit", "many"},
		{"token", "--json", "--reveal=maybe", "0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b"},
		{"connect", "--json", "--timeout"},
		{"keygen", "--bogus"},
		{"dev", "--broker-port", "x"},
		{"providers"},
		{"connections"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errOut, code := runCLI(t, nil, args...)
			if code != 1 || out != "" {
				t.Fatalf("exit %d, stdout %q", code, out)
			}
			if !strings.Contains(errOut, "Usage: dromos "+args[0]) {
				t.Fatalf("no usage on stderr: %q", errOut)
			}
		})
	}
	if out, errOut, code := runCLI(t, nil); code != 2 || out != "" || !strings.Contains(errOut, "Usage: dromos COMMAND") {
		t.Fatalf("no command: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, args := range [][]string{{"token", "-h"}, {"providers", "--help"}, {"--help"}} {
		out, errOut, code := runCLI(t, nil, args...)
		if code != 0 || !strings.Contains(out, "Usage: dromos ") || errOut != "" {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

// The SDK prefixes its errors with "dromos: "; the command line already
// says "dromos connect: ", once.
func TestConnectErrorHasOnePrefix(t *testing.T) {
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"code":"not_found","message":"provider \"nope\" not found"}`))
	}))
	t.Cleanup(gw.Close)
	for _, args := range [][]string{
		{"connect", "--gateway", gw.URL, "--provider", "nope", "--user", "u", "--scopes", "a"},
		{"connect", "--gateway", closedURL(t), "--provider", "nope", "--user", "u", "--scopes", "a"},
	} {
		_, errOut, code := runCLI(t, nil, args...)
		if code != 1 || !strings.HasPrefix(errOut, "dromos connect: ") || strings.Count(errOut, "dromos") != 1 {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	}
}
