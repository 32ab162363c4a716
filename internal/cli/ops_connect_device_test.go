package cli_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestConnectDeviceFlow: for a device-code provider, connect prints the
// verification page and the user code (no consent URL), waits while the
// connection is pending, and prints the connection once it is active.
func TestConnectDeviceFlow(t *testing.T) {
	var checks atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/request-connection", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"authUrl":"","connection_id":"0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b","state":"abc","scopes":["repo"],"provider_id":"p1",
"status":"pending","verification_uri":"https://github.com/login/device","user_code":"WDJB-MJHT","expires_in":900,"interval":5}`))
	})
	mux.HandleFunc("GET /v1/check-connection/{id}", func(w http.ResponseWriter, r *http.Request) {
		if checks.Add(1) < 2 {
			_, _ = w.Write([]byte(`{"status":"pending"}`))
			return
		}
		_, _ = w.Write([]byte(`{"status":"active"}`))
	})
	mux.HandleFunc("GET /v1/token/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"access_token":"gho_device_token_0123456789","token_type":"Bearer","scope":"repo","provider":"github"}`))
	})
	gw := httptest.NewServer(mux)
	t.Cleanup(gw.Close)
	out, errOut, code := runCLI(t, nil, "connect", "--gateway", gw.URL, "--provider", "github", "--user", "u-1",
		"--scopes", "repo", "--return-url", "https://app.example/done")
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	for _, want := range []string{"https://github.com/login/device", "WDJB-MJHT", "Connected", "0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Open this URL in a browser") {
		t.Errorf("a device flow was shown as a consent URL:\n%s", out)
	}
	if checks.Load() < 2 {
		t.Errorf("connect did not wait for the connection (%d checks)", checks.Load())
	}
}
