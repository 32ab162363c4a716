package cli_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// keyGateway answers request-connection for a key-based provider with
// status (active or failed) and records the body it got.
func keyGateway(t *testing.T, status string, seen *map[string]any) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/request-connection", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(seen)
		reason := ""
		if status == "failed" {
			reason = `,"status_reason":"credential_refused"`
		}
		_, _ = w.Write([]byte(`{"authUrl":"","connection_id":"0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b","state":"abc","scopes":[],"provider_id":"p1","status":"` + status + `"` + reason + `}`))
	})
	mux.HandleFunc("GET /v1/token/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"access_token":"sk-cli-secret-0123456789","token_type":"Bearer","scope":"","provider":"openai",
			"credential":{"type":"api_key","header":"Authorization","value_prefix":"Bearer ","value":"sk-cli-secret-0123456789"}}`))
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func TestConnectWithAPIKey(t *testing.T) {
	const key = "sk-cli-secret-0123456789"
	t.Run("key from the environment", func(t *testing.T) {
		var body map[string]any
		gw := keyGateway(t, "active", &body)
		out, errOut, code := runCLI(t, []string{"OPENAI_KEY=" + key}, "connect", "--gateway", gw.URL, "--provider", "openai",
			"--user", "u-1", "--key-env", "OPENAI_KEY", "--return-url", "https://app.example/done")
		if code != 0 || !strings.Contains(out, "Connected") {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
		}
		creds, _ := body["credentials"].(map[string]any)
		if creds["api_key"] != key || body["scopes"] != nil {
			t.Fatalf("gateway saw %v", body)
		}
		if strings.Contains(out+errOut, key) {
			t.Fatalf("the key was printed:\n%s\n%s", out, errOut)
		}
	})
	t.Run("basic user and password", func(t *testing.T) {
		var body map[string]any
		gw := keyGateway(t, "active", &body)
		_, errOut, code := runCLI(t, []string{"TWILIO_TOKEN=tok-123456"}, "connect", "--gateway", gw.URL, "--provider", "twilio",
			"--user", "u-1", "--basic-user", "AC0001", "--key-env", "TWILIO_TOKEN", "--return-url", "https://app.example/done")
		creds, _ := body["credentials"].(map[string]any)
		if code != 0 || creds["username"] != "AC0001" || creds["password"] != "tok-123456" {
			t.Fatalf("exit %d %s; gateway saw %v", code, errOut, body)
		}
	})
	t.Run("hosted form", func(t *testing.T) {
		var body map[string]any
		gw := keyGateway(t, "active", &body)
		_, errOut, code := runCLI(t, nil, "connect", "--gateway", gw.URL, "--provider", "openai", "--user", "u-1", "--key-form",
			"--return-url", "https://app.example/done")
		creds, isMap := body["credentials"].(map[string]any)
		if code != 0 || !isMap || len(creds) != 0 {
			t.Fatalf("exit %d %s; gateway saw %v", code, errOut, body)
		}
	})
	t.Run("refused key", func(t *testing.T) {
		var body map[string]any
		gw := keyGateway(t, "failed", &body)
		out, errOut, code := runCLI(t, []string{"OPENAI_KEY=" + key}, "connect", "--gateway", gw.URL, "--provider", "openai",
			"--user", "u-1", "--key-env", "OPENAI_KEY", "--return-url", "https://app.example/done")
		if code != 1 || !strings.Contains(errOut, "refused the credential") || strings.Contains(out+errOut, key) {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
		}
	})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--key-env", "NOPE"}, "NOPE is empty or not set"},
		{[]string{"--basic-user", "u"}, "--basic-user needs --key-env"},
		{[]string{"--key-form", "--key-env", "X"}, "--key-form asks the user"},
	} {
		args := append([]string{"connect", "--gateway", "http://127.0.0.1:1", "--provider", "openai", "--user", "u-1"}, tc.args...)
		if _, errOut, code := runCLI(t, nil, args...); code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d %q, want %q", tc.args, code, errOut, tc.want)
		}
	}
}
