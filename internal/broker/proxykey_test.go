package broker_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/gateway"
	"github.com/dromos-dev/dromos/sdk"
)

// agentRecorder keeps everything an agent received from the gateway:
// status lines, headers and bodies.
type agentRecorder struct {
	mu  sync.Mutex
	got bytes.Buffer
}

func (r *agentRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.mu.Lock()
	r.got.WriteString(resp.Status + "\n")
	_ = resp.Header.Write(&r.got)
	r.got.Write(body)
	r.got.WriteString("\n")
	r.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, rerr
}

func (r *agentRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got.String()
}

// headerAPI is a provider API that answers 200 only when the exact header
// it expects for the path's provider arrived, and records what it saw.
type headerAPI struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []string
}

func newHeaderAPI(t *testing.T, want map[string]http.Header) *headerAPI {
	a := &headerAPI{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.seen = append(a.seen, fmt.Sprintf("%s authorization=%q x-api-key=%q", r.URL.Path, r.Header.Values("Authorization"), r.Header.Values("X-Api-Key")))
		a.mu.Unlock()
		prov, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		exp, ok := want[prov]
		if !ok || strings.HasSuffix(r.URL.Path, "/refuse") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		for _, k := range []string{"Authorization", "X-Api-Key"} {
			if fmt.Sprint(r.Header.Values(k)) != fmt.Sprint(exp.Values(k)) {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
		}
		_, _ = io.WriteString(w, "hello from "+prov)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *headerAPI) log() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.seen...)
}

// TestProxyInjectsKeyCredentials: an api_key connection (key in the
// provider's own header) and a basic one reach their API through the
// gateway's proxy with the credential object's own rule, not the bearer
// rule of api_auth; the API checks the exact headers it received; a 401
// is passed back without a refresh; the agent never receives the key or
// the password.
func TestProxyInjectsKeyCredentials(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("AC0001:"+basicPasswd))
		api := newHeaderAPI(t, map[string]http.Header{
			"anthropic": {"X-Api-Key": {goodKey}},
			"twilio":    {"Authorization": {basic}},
		})
		s := newStackGateway(t, dbURL, func(c *gateway.Config) { c.Proxy.AllowPrivate = true })
		s.h.registerProvider(map[string]any{"name": "anthropic", "auth_mode": "api_key",
			"credential":    map[string]any{"injection": map[string]any{"header": "x-api-key"}},
			"api_base_urls": []string{api.srv.URL + "/anthropic"}})
		s.h.registerProvider(map[string]any{"name": "twilio", "auth_mode": "basic",
			"api_base_urls": []string{api.srv.URL + "/twilio"}})

		rec := &agentRecorder{}
		c, err := sdk.New(s.gwURL, sdk.WithAPIKey(agentKey), sdk.WithProxy(), sdk.WithHTTPClient(&http.Client{Transport: rec, Timeout: 10 * time.Second}))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for _, tc := range []struct {
			provider string
			creds    *sdk.Credentials
		}{
			{"anthropic", &sdk.Credentials{APIKey: goodKey}},
			{"twilio", &sdk.Credentials{Username: "AC0001", Password: basicPasswd}},
		} {
			conn, err := c.RequestConnection(ctx, sdk.RequestConnectionInput{UserID: "alice", ProviderName: tc.provider,
				ReturnURL: s.retURL, Credentials: tc.creds})
			if err != nil || conn.Status != sdk.StatusActive {
				t.Fatalf("%s: %+v %v", tc.provider, conn, err)
			}
			hc := c.HTTPClient(ctx, conn.ConnectionID)
			for i := 0; i < 2; i++ { // the second from the gateway's cache
				resp, err := hc.Get(api.srv.URL + "/" + tc.provider + "/v1/me?q=1")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(body) != "hello from "+tc.provider {
					t.Fatalf("%s call %d: %d %q; the API saw %q", tc.provider, i, resp.StatusCode, body, api.log())
				}
			}
			// The provider refuses the credential: its 401 comes back as it
			// is, and the gateway asks the broker for no refresh.
			before := len(api.log())
			resp, err := hc.Get(api.srv.URL + "/" + tc.provider + "/refuse")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || len(api.log()) != before+1 {
				t.Fatalf("%s refused: %d after %d API calls, want 401 after 1", tc.provider, resp.StatusCode, len(api.log())-before)
			}
		}
		seen := strings.Join(api.log(), "\n")
		for _, leak := range []string{"Bearer", agentKey} {
			if strings.Contains(seen, leak) {
				t.Fatalf("the API received %q:\n%s", leak, seen)
			}
		}
		if strings.Contains(s.gwLogs.String(), `"retried":true`) {
			t.Fatal("the gateway retried a call refused with a static credential")
		}
		got := rec.String()
		for _, secret := range []string{goodKey, basicPasswd, strings.TrimPrefix(basic, "Basic ")} {
			if strings.Contains(got, secret) {
				t.Fatalf("the agent received a credential (%.6s…)", secret)
			}
		}
		if !strings.Contains(got, "hello from twilio") {
			t.Fatal("the recorder saw none of the agent's answers")
		}
	})
}
