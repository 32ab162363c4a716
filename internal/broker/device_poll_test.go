package broker_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/broker"
	"github.com/dromos-dev/dromos/internal/devicepoll"
	"github.com/dromos-dev/dromos/internal/storage"
)

// deviceAS is a fake authorization server for the device grant: it hands
// out one device code per request and answers each poll of its token
// endpoint with the next scripted error (then a token), recording when
// every poll arrived.
type deviceAS struct {
	srv      *httptest.Server
	interval int
	expires  int

	mu      sync.Mutex
	script  []string // OAuth error per poll ("http:503": that status); "" or past the end: a token
	polls   []time.Time
	codes   []string // device codes handed out
	badPoll bool     // a poll carried a device code never handed out
	// hold, when set before the first poll, keeps that poll's answer back
	// until it is closed.
	hold chan struct{}
}

func newDeviceAS(t *testing.T, interval, expires int, script ...string) *deviceAS {
	as := &deviceAS{interval: interval, expires: expires, script: script}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /device", func(w http.ResponseWriter, r *http.Request) {
		as.mu.Lock()
		code := fmt.Sprintf("fake-device-code-%d-0123456789abcdef", len(as.codes))
		as.codes = append(as.codes, code)
		as.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"device_code": code, "user_code": "WDJB-MJHT",
			"verification_uri": as.srv.URL + "/activate", "expires_in": as.expires, "interval": as.interval})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		_ = r.ParseForm()
		as.mu.Lock()
		known := false
		for _, c := range as.codes {
			known = known || c == r.PostForm.Get("device_code")
		}
		as.badPoll = as.badPoll || !known || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:device_code"
		n := len(as.polls)
		as.polls = append(as.polls, at)
		answer := ""
		if n < len(as.script) {
			answer = as.script[n]
		}
		as.mu.Unlock()
		if hold := as.hold; hold != nil && n == 0 {
			<-hold // the test acts while the first poll is in flight
		}
		w.Header().Set("Content-Type", "application/json")
		if code, ok := strings.CutPrefix(answer, "http:"); ok {
			st, _ := strconv.Atoi(code)
			w.WriteHeader(st)
			_, _ = w.Write([]byte(`{}`))
			return
		}
		if answer != "" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprintf(w, `{"error":%q}`, answer)
			return
		}
		_, _ = w.Write([]byte(`{"access_token":"device-access-token","token_type":"Bearer","expires_in":3600,"refresh_token":"device-refresh"}`))
	})
	as.srv = httptest.NewServer(mux)
	t.Cleanup(as.srv.Close)
	return as
}

func (as *deviceAS) pollTimes() []time.Time {
	as.mu.Lock()
	defer as.mu.Unlock()
	return append([]time.Time(nil), as.polls...)
}

func (as *deviceAS) register(h *harness) {
	h.registerProvider(map[string]any{"name": "fake-device", "auth_mode": "oauth2_device_code",
		"token_url": as.srv.URL + "/token", "device_authorization_url": as.srv.URL + "/device",
		"client_id": "dev-client", "client_secret": "dev-client-secret-0123456789", "token_endpoint_auth_method": "client_secret_post"})
}

func (h *harness) deviceConsent(provider string) (id string, answer map[string]any) {
	h.t.Helper()
	if st := h.do("POST", "/auth/consent-spec", map[string]any{"workspace_id": "ws-1", "user_id": "u-1", "provider_name": provider,
		"scopes": []string{"read"}, "return_url": "https://app.example/back"}, &answer); st != 200 {
		h.t.Fatalf("device consent: %d %v", st, answer)
	}
	return answer["connection_id"].(string), answer
}

// devicePolls is the broker's dromos_device_polls_total, all results.
func (h *harness) devicePolls() int {
	h.t.Helper()
	resp, err := http.Get(h.srv.URL + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "dromos_device_polls_total{"); ok {
			_, v, _ := strings.Cut(rest, "} ")
			f, _ := strconv.ParseFloat(v, 64)
			n += int(f)
		}
	}
	return n
}

// TestDevicePollingAcrossReplicas: two brokers on one database run their
// workers (ticking every 100 ms) for one pending device connection whose
// provider asks for a 2 s interval. The provider sees one poll per
// interval, never two: every gap is at least 2 s. The third answer is
// slow_down: the interval grows to 7 s, is stored, and both replicas keep
// to it. The fourth answer is the token: the connection turns active and
// the polling stops.
func TestDevicePollingAcrossReplicas(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		fast := func(c *broker.Config) { c.DevicePoll = devicepoll.Options{Tick: 100 * time.Millisecond} }
		h1 := newHarness(t, dbURL, fast)
		h2 := newHarness(t, dbURL, fast)
		for _, h := range []*harness{h1, h2} {
			h.clock.RealTime()
		}
		as := newDeviceAS(t, 2, 600, "authorization_pending", "authorization_pending", "slow_down")
		as.register(h1)
		id, answer := h1.deviceConsent("fake-device")
		if answer["interval"] != float64(2) || answer["user_code"] != "WDJB-MJHT" || answer["status"] != "pending" {
			t.Fatalf("answer %v", answer)
		}
		created := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, h := range []*harness{h1, h2} {
			wg.Add(1)
			go func() { defer wg.Done(); h.broker.RunWorker(ctx, broker.WorkerOptions{Interval: time.Hour}) }()
		}
		defer func() { cancel(); wg.Wait() }()

		// After the slow_down (third poll, about 6 s in), the stored
		// interval is 7 s.
		deadline := time.Now().Add(30 * time.Second)
		for len(as.pollTimes()) < 3 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		if g, err := h1.store.GetDeviceGrant(context.Background(), id); err != nil || g.IntervalSeconds != 7 || g.Polls != 3 {
			t.Fatalf("after slow_down: %+v %v", g, err)
		}
		for st := h1.status(id); (st == storage.StatusPending || st == storage.StatusExchanging) && time.Now().Before(deadline); st = h1.status(id) {
			time.Sleep(50 * time.Millisecond)
		}
		if st := h1.status(id); st != storage.StatusActive {
			t.Fatalf("connection %s after the token", st)
		}
		// Nobody polls a finished grant.
		time.Sleep(2500 * time.Millisecond)
		polls := as.pollTimes()
		var gaps []string
		for i := 1; i < len(polls); i++ {
			gaps = append(gaps, polls[i].Sub(polls[i-1]).Round(time.Millisecond).String())
		}
		t.Logf("polls at %v after the request; gaps %v; replica polls %d + %d",
			polls[0].Sub(created).Round(time.Millisecond), gaps, h1.devicePolls(), h2.devicePolls())
		if len(polls) != 4 || as.badPoll {
			t.Fatalf("provider saw %d polls (want 4: pending, pending, slow_down, token), bad poll %v", len(polls), as.badPoll)
		}
		if first := polls[0].Sub(created); first < 2*time.Second {
			t.Errorf("first poll %v after the authorization, before the 2 s interval", first)
		}
		const slack = 1500 * time.Millisecond // a loaded, shared machine
		for i, want := range []time.Duration{2 * time.Second, 2 * time.Second, 7 * time.Second} {
			gap := polls[i+1].Sub(polls[i])
			if gap < want || gap > want+slack {
				t.Errorf("gap %d: %v, want %v (at most %v late)", i+1, gap, want, slack)
			}
		}
		if n := h1.devicePolls() + h2.devicePolls(); n != len(polls) {
			t.Errorf("replicas counted %d polls, provider saw %d", n, len(polls))
		}
		var tok map[string]any
		if st := h1.do("GET", "/connections/"+id+"/token", nil, &tok); st != 200 || tok["access_token"] != "device-access-token" {
			t.Fatalf("token read %d %v", st, tok)
		}
	})
}

// TestDeviceGrantEndings: each way a device grant ends without a token
// fails the connection with its reason, stores no token and stops the
// polling; a code past its expires_in is not polled at all.
func TestDeviceGrantEndings(t *testing.T) {
	cases := []struct {
		name       string
		script     []string
		advance    time.Duration
		wantReason string
		wantPolls  int
	}{
		{"access_denied", []string{"access_denied"}, 2 * time.Second, "access_denied", 1},
		{"expired_token", []string{"expired_token"}, 2 * time.Second, "expired_token", 1},
		{"past expires_in", nil, 31 * time.Second, "expired_token", 0},
		{"invalid_grant", []string{"invalid_grant"}, 2 * time.Second, "exchange_failed", 1},
		{"invalid_client", []string{"invalid_client"}, 2 * time.Second, "invalid_client", 1},
	}
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL)
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				as := newDeviceAS(t, 2, 30, tc.script...)
				name := fmt.Sprintf("fake-device-%d", i)
				h.registerProvider(map[string]any{"name": name, "auth_mode": "oauth2_device_code",
					"token_url": as.srv.URL + "/token", "device_authorization_url": as.srv.URL + "/device",
					"client_id": "dev-client", "client_secret": "dev-client-secret-0123456789", "token_endpoint_auth_method": "client_secret_post"})
				id, _ := h.deviceConsent(name)
				// Before the interval nothing is polled.
				if _, err := h.broker.PollDevices(context.Background()); err != nil || len(as.pollTimes()) != 0 {
					t.Fatalf("polled before the interval: %d, %v", len(as.pollTimes()), err)
				}
				h.clock.Advance(tc.advance)
				if _, err := h.broker.PollDevices(context.Background()); err != nil {
					t.Fatal(err)
				}
				c, err := h.store.GetConnection(context.Background(), id)
				if err != nil || c.Status != storage.StatusFailed || c.StatusReason != tc.wantReason {
					t.Fatalf("connection %s (%s), want failed (%s): %v", c.Status, c.StatusReason, tc.wantReason, err)
				}
				h.assertNoToken(id)
				h.clock.Advance(10 * time.Second)
				if _, err := h.broker.PollDevices(context.Background()); err != nil {
					t.Fatal(err)
				}
				if n := len(as.pollTimes()); n != tc.wantPolls {
					t.Fatalf("provider saw %d polls, want %d", n, tc.wantPolls)
				}
				if _, err := h.store.GetDeviceGrant(context.Background(), id); err == nil {
					t.Fatal("the grant row outlived its end")
				}
			})
		}
	})
}
