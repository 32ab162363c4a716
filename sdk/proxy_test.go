package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// A fake gateway serving the proxy routes: it records what the SDK sent.
func TestProxyModeRewritesOntoTheProxyRoute(t *testing.T) {
	const id = "0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b"
	var (
		mu   sync.Mutex
		seen []string
	)
	var other int
	foreign := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { other++ }))
	defer foreign.Close()
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s %s auth=%s base=%s", r.Method, r.URL.EscapedPath(), r.URL.RawQuery,
			r.Header.Get("Authorization"), r.Header.Get("X-Dromos-Api-Base")))
		mu.Unlock()
		switch {
		case r.URL.Path == "/v1/proxy-bases/"+id:
			fmt.Fprint(w, `{"provider":"google","api_base_urls":["https://www.googleapis.com","https://gmail.googleapis.com/gmail/v1"]}`)
		case strings.HasSuffix(r.URL.Path, "/moved"):
			http.Redirect(w, r, foreign.URL+"/x", http.StatusFound)
		default:
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "proxied %s", b)
		}
	}))
	defer gw.Close()
	c, err := New(gw.URL, WithAPIKey("agent-key"), WithProxy())
	if err != nil {
		t.Fatal(err)
	}
	api := c.HTTPClient(context.Background(), id)
	resp, err := api.Get("https://www.googleapis.com/oauth2/v3/userinfo?alt=json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "proxied " {
		t.Fatalf("answer %q", body)
	}
	req, _ := http.NewRequest("POST", "https://gmail.googleapis.com/gmail/v1/users/me/messages/send", strings.NewReader("mail"))
	req.Header.Set("Authorization", "Bearer something-else")
	if resp, err = api.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Not under a base: other host, or a path beside the base's.
	for _, u := range []string{foreign.URL + "/x", "https://gmail.googleapis.com/upload/x", "https://www.googleapis.com.evil.test/x"} {
		if _, err := api.Get(u); !errors.Is(err, ErrNotProxied) {
			t.Fatalf("%s: %v, want ErrNotProxied", u, err)
		}
	}
	resp, err = api.Get("https://www.googleapis.com/moved")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || other != 0 {
		t.Fatalf("redirect: %d, foreign host hit %d times", resp.StatusCode, other)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"GET /v1/proxy-bases/" + id + "  auth=Bearer agent-key base=",
		"GET /v1/proxy/" + id + "/oauth2/v3/userinfo alt=json auth=Bearer agent-key base=",
		"POST /v1/proxy/" + id + "/users/me/messages/send  auth=Bearer agent-key base=1",
		"GET /v1/proxy/" + id + "/moved  auth=Bearer agent-key base=",
	}
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the gateway saw\n%s\nwant\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
}
