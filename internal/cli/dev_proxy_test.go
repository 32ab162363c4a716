package cli_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/sdk"
)

// agentTransport keeps everything an agent received: status lines,
// headers and bodies.
type agentTransport struct {
	mu    sync.Mutex
	got   bytes.Buffer
	codes []int
}

func (a *agentTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	a.mu.Lock()
	a.codes = append(a.codes, resp.StatusCode)
	a.got.WriteString(resp.Status + "\n")
	_ = resp.Header.Write(&a.got)
	a.got.Write(body)
	a.got.WriteString("\n")
	a.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, rerr
}

func (a *agentTransport) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.got.String()
}

// demoUserinfo is the status the demo provider's userinfo answers for an
// access token presented straight to it (by the test, not the agent).
func demoUserinfo(t *testing.T, p *devProcess, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", p.brokerURL+"/demo/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestProxyAcrossTokenExpiry: `dromos dev` with 10-second demo access
// tokens. An agent using the SDK in proxy mode reads the demo userinfo as
// the user; the access token then really expires at the provider (the
// provider itself refuses it), and the agent's next call through the
// proxy still answers 200 as the same user, with a refreshed token the
// broker now holds. The agent sees only 2xx and never a token.
func TestProxyAcrossTokenExpiry(t *testing.T) {
	dataDir := t.TempDir()
	p := startDev(t, dataDir, "--demo-access-token-ttl", "10s")
	id, q := consentThroughDemo(t, p, "approve")
	if q.Get("status") != "success" {
		t.Fatalf("consent: %v", q)
	}
	rec := &agentTransport{}
	agent, err := sdk.New(p.gatewayURL, sdk.WithProxy(), sdk.WithHTTPClient(&http.Client{Transport: rec, Timeout: 20 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	api := agent.HTTPClient(ctx, id)
	userinfo := func() map[string]any {
		t.Helper()
		resp, err := api.Get(p.brokerURL + "/demo/userinfo")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("userinfo through the proxy: %d %v", resp.StatusCode, err)
		}
		return out
	}
	first := userinfo()
	if first["sub"] == nil || !strings.Contains(fmt.Sprint(first), "alice") {
		t.Fatalf("userinfo is not alice's: %v", first)
	}

	// The token the broker holds now works at the provider…
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if st := getJSON(t, p.brokerURL+"/connections/"+id+"/token", &tok); st != 200 || tok.AccessToken == "" {
		t.Fatalf("broker token read: %d", st)
	}
	t1 := tok.AccessToken
	if st := demoUserinfo(t, p, t1); st != http.StatusOK {
		t.Fatalf("the fresh token at the provider: %d", st)
	}
	// …until its lifetime is over: the provider itself refuses it, and
	// not before the expiry it states (an expiry, not a revocation).
	exp := jwtExpiry(t, t1)
	if left := time.Until(exp); left <= 0 || left > 10*time.Second {
		t.Fatalf("the token has %v left, want a 10s lifetime", left)
	}
	deadline := time.Now().Add(20 * time.Second)
	for demoUserinfo(t, p, t1) != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("the demo access token did not expire within 20s of a 10s lifetime")
		}
		time.Sleep(250 * time.Millisecond)
	}
	if time.Now().Before(exp) {
		t.Fatalf("the provider refused the token %v before its expiry: revoked, not expired", time.Until(exp))
	}

	// The agent carries on as if nothing happened.
	for i := 0; i < 3; i++ {
		if again := userinfo(); again["sub"] != first["sub"] {
			t.Fatalf("userinfo after the expiry is someone else's: %v", again)
		}
	}
	if st := getJSON(t, p.brokerURL+"/connections/"+id+"/token", &tok); st != 200 || tok.AccessToken == "" {
		t.Fatalf("broker token read: %d", st)
	}
	t2 := tok.AccessToken
	if t2 == t1 {
		t.Fatal("the broker still holds the expired token: no refresh happened")
	}
	if st := demoUserinfo(t, p, t1); st != http.StatusUnauthorized {
		t.Fatalf("the expired token came back to life: %d", st)
	}

	got := rec.String()
	rec.mu.Lock()
	codes := fmt.Sprint(rec.codes)
	rec.mu.Unlock()
	// The SDK's look-up of the API bases, then the four calls.
	if codes != "[200 200 200 200 200]" {
		t.Fatalf("the agent received %s, want only 200s", codes)
	}
	for i, secret := range []string{t1, t2} {
		if strings.Contains(got, secret) {
			t.Fatalf("access token #%d reached the agent", i+1)
		}
	}
	// Each call is one proxy.call row in the broker's audit table, none
	// holding a token.
	rows := proxyRows(t, p, id, 4)
	for _, secret := range []string{t1, t2} {
		if strings.Contains(rows, secret) {
			t.Fatal("an audit row holds an access token")
		}
	}
	// A call just before shutdown: the gateway hands its record to the
	// broker as it stops, and it is there after a restart.
	userinfo()
	p.stop()
	if n := strings.Count(p.stderr.String(), `"msg":"proxy call"`); n != 5 {
		t.Fatalf("%d proxy call lines in the log, want 5", n)
	}
	proxyRows(t, startDev(t, dataDir), id, 5)
}

// proxyRows waits for want proxy.call audit rows of connection id at the
// dev broker (the gateway sends them every second) and returns them as
// JSON; more than want fails the test.
func proxyRows(t *testing.T, p *devProcess, id string, want int) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out struct {
			Events []struct {
				Type   string            `json:"type"`
				Actor  string            `json:"actor"`
				Detail map[string]string `json:"detail"`
			} `json:"events"`
		}
		resp, err := http.Get(p.brokerURL + "/audit?limit=1000&connection_id=" + id)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("audit list: %d %v", resp.StatusCode, err)
		}
		n := 0
		for _, e := range out.Events {
			if e.Type != "proxy.call" {
				continue
			}
			n++
			if d := e.Detail; d["status"] != "200" || d["path"] != "/demo/userinfo" || d["method"] != "GET" || d["ownership"] != "agent" || e.Actor == "" {
				t.Fatalf("proxy.call row %v by %q", d, e.Actor)
			}
		}
		if n > want {
			t.Fatalf("%d proxy.call rows, want %d", n, want)
		}
		if n == want {
			return string(raw)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d proxy.call rows after 10s, want %d", n, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jwtExpiry reads the exp claim of a JWT access token (unverified: the
// test only wants to know when the provider means it to expire).
func jwtExpiry(t *testing.T, jwt string) time.Time {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatal("the demo access token is not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err != nil || json.Unmarshal(raw, &claims) != nil || claims.Exp == 0 {
		t.Fatalf("the demo access token has no readable exp: %v", err)
	}
	return time.Unix(claims.Exp, 0)
}
