package broker_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/broker"
	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/storage"
)

const returnURL = "https://app.example.test/done?keep=1"

func setupFake(t *testing.T, dbURL string) (*harness, *fakeProvider) {
	h := newHarness(t, dbURL)
	f := newFakeProvider(t)
	h.registerProvider(f.profile("fake"))
	return h, f
}

func TestCallbackSuccessWithFakeProvider(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, f := setupFake(t, dbURL)
		c := h.consent("FAKE", nil, returnURL) // names resolve case-insensitively
		if len(c.Scopes) != 1 || c.Scopes[0] != "read" {
			t.Fatalf("default scopes not applied: %v", c.Scopes)
		}
		if !strings.HasPrefix(c.AuthURL, h.srv.URL+"/auth/start/") {
			t.Fatalf("authUrl does not bind the browser: %s", c.AuthURL)
		}
		au, _ := url.Parse(c.ProviderURL)
		if au.Query().Get("code_challenge_method") != "S256" || au.Query().Get("code_challenge") == "" ||
			au.Query().Get("state") != c.State || au.Path != "/authorize" {
			t.Fatalf("provider URL %s", c.ProviderURL)
		}
		resp := h.callback(url.Values{"state": {c.State}, "code": {"c1"}})
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("callback status %d", resp.StatusCode)
		}
		loc, _ := url.Parse(resp.Header.Get("Location"))
		q := loc.Query()
		if loc.Host != "app.example.test" || q.Get("status") != "success" || q.Get("connection_id") != c.ConnectionID || q.Get("keep") != "1" {
			t.Fatalf("bad redirect %s", loc)
		}
		var tok map[string]any
		if st := h.do("GET", "/connections/"+c.ConnectionID+"/token", nil, &tok); st != 200 {
			t.Fatalf("token read %d %v", st, tok)
		}
		if tok["access_token"] != "fake-access-c1" || tok["provider"] != "fake" || tok["token_type"] != "Bearer" {
			t.Fatalf("token body %v", tok)
		}
		if _, ok := tok["refresh_token"]; ok {
			t.Fatal("refresh_token exposed without EXPOSE_REFRESH_TOKEN")
		}
		if f.calls.Load() != 1 {
			t.Fatalf("provider calls %d", f.calls.Load())
		}
		// The stored ciphertext holds none of the token in clear.
		row, err := h.store.GetToken(context.Background(), c.ConnectionID)
		if err != nil || strings.Contains(string(row.Ciphertext), "fake-access") {
			t.Fatalf("token not sealed: %v", err)
		}
		if strings.Contains(h.logs.String(), "fake-access-c1") || strings.Contains(h.logs.String(), "fake-secret-value") {
			t.Fatal("token or client secret in logs")
		}
	})
}

// TestCallbackRejections: each attack gets a 400, reaches no provider and
// leaves the connection pending with no token.
func TestCallbackRejections(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, f := setupFake(t, dbURL)
		foreign, _ := state.NewSigner(foreignKey, nil, state.Options{Now: h.clock.Now})
		cases := []struct {
			name  string
			query func(c consentResp) url.Values
		}{
			{"tampered state", func(c consentResp) url.Values {
				b := []byte(c.State)
				if b[10] == 'A' {
					b[10] = 'B'
				} else {
					b[10] = 'A'
				}
				return url.Values{"state": {string(b)}, "code": {"x"}}
			}},
			{"state from another key", func(c consentResp) url.Values {
				forged, err := foreign.Sign(state.Payload{ConnectionID: c.ConnectionID, WorkspaceID: "ws-1", ProviderID: c.ProviderID})
				if err != nil {
					t.Fatal(err)
				}
				return url.Values{"state": {forged}, "code": {"x"}}
			}},
			{"repeated state", func(c consentResp) url.Values {
				return url.Values{"state": {c.State, c.State}, "code": {"x"}}
			}},
			{"repeated code", func(c consentResp) url.Values {
				return url.Values{"state": {c.State}, "code": {"x", "y"}}
			}},
			{"missing code", func(c consentResp) url.Values { return url.Values{"state": {c.State}} }},
			{"missing state", func(c consentResp) url.Values { return url.Values{"code": {"x"}} }},
			{"garbage state", func(c consentResp) url.Values {
				return url.Values{"state": {"<script>alert(1)</script>"}, "code": {"x"}}
			}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c := h.consent("fake", nil, returnURL)
				before := f.calls.Load()
				resp := h.callback(tc.query(c))
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("status %d", resp.StatusCode)
				}
				if f.calls.Load() != before {
					t.Fatal("provider was called")
				}
				if st := h.status(c.ConnectionID); st != storage.StatusPending {
					t.Fatalf("status changed to %s", st)
				}
				h.assertNoToken(c.ConnectionID)
			})
		}
	})
}

func TestCallbackPageEchoesNothing(t *testing.T) {
	h, _ := setupFake(t, "sqlite:"+t.TempDir()+"/d.db")
	resp, err := http.Get(h.srv.URL + "/auth/callback?state=%3Cscript%3Eevil%3C%2Fscript%3E&code=evilcode")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := new(strings.Builder)
	_, _ = io.Copy(buf, resp.Body)
	if resp.StatusCode != 400 || strings.Contains(buf.String(), "evil") {
		t.Fatalf("page echoes request: %d %s", resp.StatusCode, buf)
	}
}

func TestExpiredStateRejected(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, f := setupFake(t, dbURL)
		c := h.consent("fake", nil, returnURL)
		h.clock.Advance(10*time.Minute + time.Second)
		if resp := h.callback(url.Values{"state": {c.State}, "code": {"x"}}); resp.StatusCode != 400 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if f.calls.Load() != 0 {
			t.Fatal("provider called")
		}
		h.assertNoToken(c.ConnectionID)
	})
}

func TestReplayedCallbackChangesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, f := setupFake(t, dbURL)
		c := h.consent("fake", nil, returnURL)
		if resp := h.callback(url.Values{"state": {c.State}, "code": {"first"}}); resp.StatusCode != 302 {
			t.Fatalf("first callback %d", resp.StatusCode)
		}
		ctx := context.Background()
		before, _ := h.store.GetToken(ctx, c.ConnectionID)
		conn1, _ := h.store.GetConnection(ctx, c.ConnectionID)
		if resp := h.callback(url.Values{"state": {c.State}, "code": {"second"}}); resp.StatusCode != 400 {
			t.Fatalf("replay status %d", resp.StatusCode)
		}
		after, _ := h.store.GetToken(ctx, c.ConnectionID)
		conn2, _ := h.store.GetConnection(ctx, c.ConnectionID)
		if f.calls.Load() != 1 || string(before.Ciphertext) != string(after.Ciphertext) || conn1.Version != conn2.Version {
			t.Fatalf("replay changed something: calls=%d", f.calls.Load())
		}
	})
}

func TestProviderErrorFailsConnection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, f := setupFake(t, dbURL)
		c := h.consent("fake", nil, returnURL)
		resp := h.callback(url.Values{"state": {c.State}, "error": {"access_denied"}, "error_description": {"user said no"}})
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != 302 || loc.Query().Get("status") != "error" || loc.Query().Get("error") != "access_denied" ||
			loc.Query().Get("connection_id") != c.ConnectionID {
			t.Fatalf("got %d %s", resp.StatusCode, loc)
		}
		if f.calls.Load() != 0 || h.status(c.ConnectionID) != storage.StatusFailed {
			t.Fatal("provider called or connection not failed")
		}
		h.assertNoToken(c.ConnectionID)
		var tokErr envelope
		if st := h.do("GET", "/connections/"+c.ConnectionID+"/token", nil, &tokErr); st != 409 || tokErr.Code != "reauth_required" {
			t.Fatalf("token read on failed connection: %d %+v", st, tokErr)
		}
		// An error code that is not one is not reflected.
		c2 := h.consent("fake", nil, returnURL)
		resp = h.callback(url.Values{"state": {c2.State}, "error": {"<b>x</b>"}})
		loc, _ = url.Parse(resp.Header.Get("Location"))
		if loc.Query().Get("error") != "provider_error" {
			t.Fatalf("unsanitised error code: %s", loc)
		}
	})
}

func TestExchangeFailures(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, f := setupFake(t, dbURL)
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t.Errorf("redirect target received a request")
		}))
		defer other.Close()
		cases := map[string]func(w http.ResponseWriter, r *http.Request){
			"500": func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) },
			"garbage": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte("{not json"))
			},
			"200 with error": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"error":"invalid_grant","access_token":"leaky"}`))
			},
			"no access token": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"token_type":"Bearer"}`))
			},
			"mac token type": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"access_token":"a","token_type":"mac"}`))
			},
			"307 to another host": func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, other.URL+"/token", http.StatusTemporaryRedirect)
			},
		}
		for name, respond := range cases {
			t.Run(name, func(t *testing.T) {
				f.setResponse(respond)
				c := h.consent("fake", nil, returnURL)
				resp := h.callback(url.Values{"state": {c.State}, "code": {"c"}})
				loc, _ := url.Parse(resp.Header.Get("Location"))
				if resp.StatusCode != 302 || loc.Query().Get("status") != "error" || loc.Query().Get("error") != "exchange_failed" {
					t.Fatalf("got %d %s", resp.StatusCode, loc)
				}
				if st := h.status(c.ConnectionID); st != storage.StatusFailed {
					t.Fatalf("status %s", st)
				}
				h.assertNoToken(c.ConnectionID)
			})
		}
	})
}

func TestParallelCallbacksExchangeOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, f := setupFake(t, dbURL)
		f.setResponse(slowly(100*time.Millisecond, f.respond))
		c := h.consent("fake", nil, returnURL)
		var wg sync.WaitGroup
		var redirects, rejected atomic.Int64
		start := make(chan struct{})
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				resp := h.callback(url.Values{"state": {c.State}, "code": {"same"}})
				switch resp.StatusCode {
				case 302:
					redirects.Add(1)
				case 400:
					rejected.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if f.calls.Load() != 1 || redirects.Load() != 1 || rejected.Load() != 9 {
			t.Fatalf("provider calls %d, redirects %d, rejected %d", f.calls.Load(), redirects.Load(), rejected.Load())
		}
		if h.status(c.ConnectionID) != storage.StatusActive {
			t.Fatal("winner did not activate the connection")
		}
	})
}

func TestCiphertextMovedBetweenRowsFails(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, _ := setupFake(t, dbURL)
		a := h.consent("fake", nil, returnURL)
		b := h.consent("fake", nil, returnURL)
		h.callback(url.Values{"state": {a.State}, "code": {"a"}})
		h.callback(url.Values{"state": {b.State}, "code": {"b"}})
		ctx := context.Background()
		tokA, err := h.store.GetToken(ctx, a.ConnectionID)
		if err != nil {
			t.Fatal(err)
		}
		// An attacker with database write access copies A's ciphertext onto B.
		_, err = h.store.UpdateConnection(ctx, b.ConnectionID, func(c storage.Connection, tok *storage.Token) (storage.Connection, storage.TokenChange, error) {
			moved := *tok
			moved.Ciphertext = tokA.Ciphertext
			return c, storage.TokenChange{Put: &moved}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		st := h.do("GET", "/connections/"+b.ConnectionID+"/token", nil, &out)
		if st != 500 || out["access_token"] != nil {
			t.Fatalf("moved ciphertext served: %d %v", st, out)
		}
	})
}

// TestCallbackInAnotherBrowserRefused: the consent was started in one
// browser; finishing it in a fresh cookie jar (a leaked authUrl, a login
// CSRF) is refused before any provider call.
func TestCallbackInAnotherBrowserRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, f := setupFake(t, dbURL)
		c := h.consent("fake", nil, returnURL)
		stranger := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := stranger.Get(h.srv.URL + "/auth/callback?" + url.Values{"state": {c.State}, "code": {"attacker-code"}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 || f.calls.Load() != 0 || h.status(c.ConnectionID) != storage.StatusPending {
			t.Fatalf("fresh browser: %d calls=%d", resp.StatusCode, f.calls.Load())
		}
		h.assertNoToken(c.ConnectionID)
		// The browser that started it still completes it.
		if resp := h.callback(url.Values{"state": {c.State}, "code": {"c"}}); resp.StatusCode != 302 {
			t.Fatalf("own browser: %d", resp.StatusCode)
		}
	})
}

func TestFlowCookieAttributes(t *testing.T) {
	for _, tc := range []struct{ base, prefix string }{
		{"http://127.0.0.1", "dromos_flow_"},
		{"https://broker.example.test", "__Host-dromos_flow_"},
	} {
		h := newHarness(t, sqliteURL(t), func(c *broker.Config) { c.BaseURL = tc.base })
		f := newFakeProvider(t)
		h.registerProvider(f.profile("fake"))
		var c consentResp
		h.do("POST", "/auth/consent-spec", map[string]any{"workspace_id": "w", "provider_name": "fake", "return_url": returnURL}, &c)
		start := strings.Replace(c.AuthURL, tc.base, h.srv.URL, 1)
		resp := h.visitStart(start)
		cookies := resp.Cookies()
		if resp.StatusCode != 302 || len(cookies) != 1 {
			t.Fatalf("%s: %d %v", tc.base, resp.StatusCode, cookies)
		}
		ck := cookies[0]
		if !strings.HasPrefix(ck.Name, tc.prefix) || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" ||
			ck.Secure != strings.HasPrefix(tc.base, "https") || strings.Contains(ck.Value, c.State) {
			t.Fatalf("%s: cookie %+v", tc.base, ck)
		}
	}
}
