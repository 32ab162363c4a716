package faults_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// answer is one HTTP exchange as the caller saw it.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("status %d: body is not JSON: %v", a.status, err)
	}
	return m
}

// str is a string member of a JSON body, "" when absent.
func (a answer) str(key string) string {
	var m map[string]any
	_ = json.Unmarshal(a.body, &m)
	s, _ := m[key].(string)
	return s
}

// newClient is an HTTP client for many concurrent calls to a few loopback
// servers; it never follows redirects, so each hop can be checked.
func newClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{MaxIdleConns: 400, MaxIdleConnsPerHost: 200, IdleConnTimeout: 30 * time.Second}
	return &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// send makes one call; a bearer key is sent when key is not empty. Errors
// are returned, not fatal, so goroutines can use it.
func send(ctx context.Context, hc *http.Client, method, u, key string, body any) (answer, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return answer{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return answer{}, err
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// must is send for the test goroutine: a transport error fails t.
func must(t *testing.T, hc *http.Client, method, u, key string, body any) answer {
	t.Helper()
	a, err := send(context.Background(), hc, method, u, key, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, redactQuery(u), err)
	}
	return a
}

func redactQuery(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

// register adds the fake provider to the registry under name through
// broker (the registry is shared by every replica on the database).
func register(t *testing.T, broker *proc, p *fakeProvider, name string) {
	t.Helper()
	a := must(t, newClient(10*time.Second), "POST", broker.url+"/providers", "", map[string]any{"profile": p.profile(name)})
	if a.status != http.StatusCreated {
		t.Fatalf("registering provider %s: %d %s", name, a.status, a.body)
	}
}

// consent is what a consent request hands back.
type consent struct {
	AuthURL      string `json:"authUrl"`
	State        string `json:"state"`
	ConnectionID string `json:"connection_id"`
}

const returnURL = "https://app.example/connected?from=faults"

// requestConsent asks broker for a new connection to provider.
func requestConsent(t *testing.T, broker *proc, provider string) consent {
	t.Helper()
	a := must(t, newClient(10*time.Second), "POST", broker.url+"/auth/consent-spec", "", map[string]any{
		"workspace_id": "faults", "user_id": "u-1", "client_name": agentName, "provider_name": provider,
		"scopes": []string{"read"}, "return_url": returnURL,
	})
	var c consent
	if a.status != http.StatusOK || json.Unmarshal(a.body, &c) != nil || c.AuthURL == "" || c.State == "" {
		t.Fatalf("consent-spec: %d %s", a.status, a.body)
	}
	return c
}

// browser is a person's browser without JavaScript: a cookie jar, no
// automatic redirects.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := newClient(30 * time.Second)
	hc.Jar = jar
	return hc
}

// onBroker points u at broker instead of the replica that issued it, as a
// load balancer in front of the replicas would.
func onBroker(t *testing.T, u string, broker *proc) string {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := url.Parse(broker.url)
	parsed.Scheme, parsed.Host = b.Scheme, b.Host
	return parsed.String()
}

// startFlow opens the consent's authUrl on broker in the browser, which
// sets the flow cookie and sends the browser on to the provider.
func startFlow(t *testing.T, br *http.Client, c consent, broker *proc) {
	t.Helper()
	a := must(t, br, "GET", onBroker(t, c.AuthURL, broker), "", nil)
	if a.status != http.StatusFound || !strings.Contains(a.header.Get("Location"), "/authorize?") {
		t.Fatalf("auth start: %d, Location %q", a.status, redactQuery(a.header.Get("Location")))
	}
}

// callbackURL is the provider's redirect back to broker with a code.
func callbackURL(broker *proc, c consent) string {
	return broker.url + "/auth/callback?" + url.Values{"state": {c.State}, "code": {"code-" + c.ConnectionID}}.Encode()
}

// finishFlow sends the browser back to broker's callback with a code and
// checks that it lands on the return URL with success.
func finishFlow(t *testing.T, br *http.Client, c consent, broker *proc) {
	t.Helper()
	a := must(t, br, "GET", callbackURL(broker, c), "", nil)
	loc, err := url.Parse(a.header.Get("Location"))
	if a.status != http.StatusFound || err != nil {
		t.Fatalf("callback: %d %s", a.status, a.body)
	}
	q := loc.Query()
	if q.Get("status") != "success" || q.Get("connection_id") != c.ConnectionID || q.Get("from") != "faults" {
		t.Fatalf("callback landed with %v", q)
	}
}

// connect runs consent, start and callback on broker and returns the id of
// the now active connection.
func connect(t *testing.T, broker *proc, provider string) string {
	t.Helper()
	c := requestConsent(t, broker, provider)
	br := browser(t)
	startFlow(t, br, c, broker)
	finishFlow(t, br, c, broker)
	return c.ConnectionID
}

// status is the connection's broker status.
func status(t *testing.T, broker *proc, id string) map[string]any {
	t.Helper()
	a := must(t, newClient(10*time.Second), "GET", broker.url+"/connections/"+id, "", nil)
	if a.status != http.StatusOK {
		t.Fatalf("GET connection: %d %s", a.status, a.body)
	}
	return a.json(t)
}

// storedToken reads the stored token as it is, without refreshing: it
// proves the ciphertext still opens with the deployment's key.
func storedToken(t *testing.T, broker *proc, id string) answer {
	t.Helper()
	return must(t, newClient(10*time.Second), "GET", broker.url+"/connections/"+id+"/token?auto_refresh=false", "", nil)
}

func describe(a answer, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprintf("%d %s", a.status, bytes.TrimSpace(a.body))
}

// metric is the value of one series (name with its labels, exactly as the
// exposition prints it) in a process's /metrics; 0 when absent.
func metric(t *testing.T, p *proc, series string) float64 {
	t.Helper()
	a := must(t, newClient(10*time.Second), "GET", p.url+"/metrics", "", nil)
	if a.status != http.StatusOK {
		t.Fatalf("%s /metrics: %d", p.name, a.status)
	}
	for _, line := range strings.Split(string(a.body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %s: %v", p.name, series, err)
			}
			return f
		}
	}
	return 0
}
