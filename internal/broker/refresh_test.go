package broker_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/broker"
	"github.com/dromos-dev/dromos/internal/storage"
)

// rotatingProvider is a token endpoint that issues access tokens valid for
// ttl and refresh tokens that rotate: each one works once; reuse answers
// invalid_grant. It counts refresh requests.
type rotatingProvider struct {
	*fakeProvider
	mu        sync.Mutex
	seq       int
	valid     map[string]bool
	refreshes atomic.Int64
	reused    atomic.Int64
	ttl       int
	delay     time.Duration
	fail      func() (int, string) // optional: status and body to answer refreshes with
	// retryAfter, when set, goes with a failed answer as Retry-After.
	retryAfter string
	noExpiry   bool
	jwtExp     int64
}

// set changes the provider's behaviour under its lock (the server reads it
// from other goroutines).
func (p *rotatingProvider) set(f func(p *rotatingProvider)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func newRotatingProvider(t *testing.T) *rotatingProvider {
	p := &rotatingProvider{fakeProvider: newFakeProvider(t), valid: map[string]bool{}, ttl: 3600}
	p.setResponse(p.serve)
	return p
}

func (p *rotatingProvider) issue(w http.ResponseWriter) {
	p.mu.Lock()
	noExpiry, jwtExp, ttl := p.noExpiry, p.jwtExp, p.ttl
	p.seq++
	n := p.seq
	rt := fmt.Sprintf("rt-%d", n)
	p.valid[rt] = true
	p.mu.Unlock()
	body := map[string]any{"access_token": fmt.Sprintf("at-%d", n), "token_type": "Bearer", "refresh_token": rt}
	if jwtExp != 0 {
		claims, _ := json.Marshal(map[string]any{"exp": jwtExp, "sub": "u"})
		body["access_token"] = "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(claims) + ".c2ln"
	}
	if !noExpiry {
		body["expires_in"] = ttl
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func (p *rotatingProvider) serve(w http.ResponseWriter, r *http.Request) {
	switch r.PostFormValue("grant_type") {
	case "authorization_code":
		p.issue(w)
	case "refresh_token":
		p.refreshes.Add(1)
		p.mu.Lock()
		delay, fail, retryAfter := p.delay, p.fail, p.retryAfter
		p.mu.Unlock()
		time.Sleep(delay)
		if fail != nil {
			st, body := fail()
			w.Header().Set("Content-Type", "application/json")
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.WriteHeader(st)
			_, _ = w.Write([]byte(body))
			return
		}
		rt := r.PostFormValue("refresh_token")
		p.mu.Lock()
		ok := p.valid[rt]
		delete(p.valid, rt)
		p.mu.Unlock()
		if !ok {
			p.reused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		p.issue(w)
	default:
		http.Error(w, `{"error":"unsupported_grant_type"}`, 400)
	}
}

// connect runs consent + callback and returns an active connection id.
func connect(t *testing.T, h *harness, provider string) string {
	t.Helper()
	c := h.consent(provider, nil, returnURL)
	if resp := h.callback(url.Values{"state": {c.State}, "code": {"c"}}); resp.StatusCode != 302 {
		t.Fatalf("callback %d", resp.StatusCode)
	}
	if h.status(c.ConnectionID) != storage.StatusActive {
		t.Fatal("not active")
	}
	return c.ConnectionID
}

func setupRotating(t *testing.T, dbURL string, tweak ...func(*broker.Config)) (*harness, *rotatingProvider, string) {
	h := newHarness(t, dbURL, tweak...)
	p := newRotatingProvider(t)
	prof := p.profile("rot")
	prof["revocation_url"] = p.srv.URL + "/revoke"
	h.registerProvider(prof)
	return h, p, connect(t, h, "rot")
}

func (h *harness) token(id string) (int, map[string]any) {
	h.t.Helper()
	var out map[string]any
	st := h.do("GET", "/connections/"+id+"/token", nil, &out)
	return st, out
}

func TestFreshTokenServedWithoutRefresh(t *testing.T) {
	h, p, id := setupRotating(t, sqliteURL(t))
	st, tok := h.token(id)
	if st != 200 || tok["access_token"] != "at-1" || tok["expires_at_source"] != "expires_in" || p.refreshes.Load() != 0 {
		t.Fatalf("%d %v refreshes=%d", st, tok, p.refreshes.Load())
	}
}

func TestConcurrentReadersRefreshOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, p, id := setupRotating(t, dbURL)
		p.set(func(p *rotatingProvider) { p.delay = 100 * time.Millisecond })
		h.clock.Advance(time.Hour) // expired
		var wg sync.WaitGroup
		got := make(chan string, 50)
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, tok := h.token(id)
				if st != 200 {
					t.Errorf("status %d %v", st, tok)
					return
				}
				got <- tok["access_token"].(string)
			}()
		}
		wg.Wait()
		close(got)
		for at := range got {
			if at != "at-2" {
				t.Fatalf("reader got %s, want the refreshed at-2", at)
			}
		}
		if p.refreshes.Load() != 1 {
			t.Fatalf("provider saw %d refreshes", p.refreshes.Load())
		}
		c, _ := h.store.GetConnection(context.Background(), id)
		if c.LastRefreshAt.IsZero() || c.RefreshLeaseOwner != "" {
			t.Fatalf("bookkeeping: %+v", c)
		}
	})
}

// TestManyBrokersOneRefresh: three brokers (separate instances, pools and
// single-flights) on one PostgreSQL; 300 concurrent readers of an expired
// connection cause exactly one provider refresh.
func TestManyBrokersOneRefresh(t *testing.T) {
	dbURL := backends(t)["postgres"](t)
	h, p, id := setupRotating(t, dbURL)
	p.set(func(p *rotatingProvider) { p.delay = 200 * time.Millisecond })
	others := []*harness{h}
	for i := 0; i < 2; i++ {
		o := newHarness(t, dbURL)
		o.clock = h.clock
		o.start()
		others = append(others, o)
	}
	h.clock.Advance(2 * time.Hour)
	var wg sync.WaitGroup
	var bad atomic.Int64
	for i := 0; i < 300; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, tok := others[i%3].token(id)
			if st != 200 || tok["access_token"] != "at-2" {
				bad.Add(1)
			}
		}()
	}
	wg.Wait()
	if p.refreshes.Load() != 1 || bad.Load() != 0 {
		t.Fatalf("refreshes=%d bad answers=%d", p.refreshes.Load(), bad.Load())
	}
}

func TestRotationStoredAndOldRefreshTokenNeverReused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, p, id := setupRotating(t, dbURL)
		for i := 2; i <= 4; i++ {
			h.clock.Advance(time.Hour)
			st, tok := h.token(id)
			if st != 200 || tok["access_token"] != fmt.Sprintf("at-%d", i) {
				t.Fatalf("round %d: %d %v", i, st, tok)
			}
		}
		if p.refreshes.Load() != 3 || p.reused.Load() != 0 {
			t.Fatalf("refreshes=%d reused=%d", p.refreshes.Load(), p.reused.Load())
		}
	})
}

func TestInvalidGrantExpiresConnection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, p, id := setupRotating(t, dbURL)
		p.set(func(p *rotatingProvider) {
			p.fail = func() (int, string) { return 400, `{"error":"invalid_grant","error_description":"revoked"}` }
		})
		h.clock.Advance(time.Hour)
		st, body := h.token(id)
		if st != 409 || body["code"] != "reauth_required" {
			t.Fatalf("%d %v", st, body)
		}
		if h.status(id) != storage.StatusExpired {
			t.Fatal("not expired")
		}
		h.assertNoToken(id)
		if st, _ := h.token(id); st != 409 || p.refreshes.Load() != 1 {
			t.Fatalf("second read %d, refreshes %d", st, p.refreshes.Load())
		}
	})
}

func TestTransientFailures(t *testing.T) {
	h, p, id := setupRotating(t, sqliteURL(t))
	p.set(func(p *rotatingProvider) {
		p.fail = func() (int, string) { return 503, `{"error":"temporarily_unavailable"}` }
	})
	// Within the refresh margin but still valid: the old token is served.
	h.clock.Advance(time.Hour - 30*time.Second)
	st, tok := h.token(id)
	if st != 200 || tok["access_token"] != "at-1" {
		t.Fatalf("still-valid token not served: %d %v", st, tok)
	}
	// Backing off: no second provider call while the backoff runs.
	h.token(id)
	if p.refreshes.Load() != 1 {
		t.Fatalf("no backoff: %d refreshes", p.refreshes.Load())
	}
	// Expired and the provider still failing: 503 with Retry-After, still active.
	h.clock.Advance(time.Minute)
	req, _ := http.NewRequest("GET", h.srv.URL+"/connections/"+id+"/token", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("expired during outage: %d Retry-After=%q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if h.status(id) != storage.StatusActive {
		t.Fatal("transient failure changed the status")
	}
	// Provider back after the backoff: refreshed.
	p.set(func(p *rotatingProvider) { p.fail = nil })
	h.clock.Advance(time.Minute)
	if st, tok := h.token(id); st != 200 || tok["access_token"] != "at-2" {
		t.Fatalf("after recovery: %d %v", st, tok)
	}
}

func TestProviderTimeoutExpiredToken(t *testing.T) {
	h, p, id := setupRotating(t, sqliteURL(t))
	p.set(func(p *rotatingProvider) { p.delay = 3 * time.Second }) // longer than the harness's 2 s exchange timeout
	h.clock.Advance(2 * time.Hour)
	st, body := h.token(id)
	if st != 503 || body["code"] != "unavailable" || h.status(id) != storage.StatusActive {
		t.Fatalf("%d %v", st, body)
	}
}

func TestCrashedHolderDoesNotBlock(t *testing.T) {
	h, p, id := setupRotating(t, sqliteURL(t))
	// A broker took the lease and died.
	_, err := h.store.UpdateConnection(context.Background(), id, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		c.RefreshLeaseOwner, c.RefreshLeaseUntil = "dead-broker", h.clock.Now().Add(30*time.Second)
		return c, storage.TokenChange{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Hour) // the token expired and so did the dead holder's lease
	if st, tok := h.token(id); st != 200 || tok["access_token"] != "at-2" || p.refreshes.Load() != 1 {
		t.Fatalf("%d %v", st, tok)
	}
}

// TestLateWriterLoses: broker A's refresh outlives its lease; broker B takes
// over and stores a newer token; A's result is discarded, never written.
func TestLateWriterLoses(t *testing.T) {
	dbURL := sqliteURL(t)
	short := func(c *broker.Config) { c.LeaseTTL = 300 * time.Millisecond }
	h, p, id := setupRotating(t, dbURL, short)
	// Refresh tokens stay valid here, so both refreshes succeed upstream.
	p.setResponse(func(w http.ResponseWriter, r *http.Request) {
		if r.PostFormValue("grant_type") == "refresh_token" {
			n := p.refreshes.Add(1)
			if n == 1 {
				time.Sleep(1500 * time.Millisecond)
			}
		}
		p.issue(w)
	})
	b := newHarness(t, dbURL, short)
	b.clock = h.clock
	b.start()
	h.clock.Advance(time.Hour)

	slow := make(chan int, 1)
	go func() { st, _ := h.token(id); slow <- st }()
	for p.refreshes.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	h.clock.Advance(time.Second) // A's lease runs out while it waits on the provider
	st, tok := b.token(id)
	if st != 200 {
		t.Fatalf("B: %d %v", st, tok)
	}
	if got := <-slow; got != 503 {
		t.Fatalf("A's late write was not refused: %d", got)
	}
	// The stored token is B's, untouched by A.
	if st, again := b.token(id); st != 200 || again["access_token"] != tok["access_token"] {
		t.Fatalf("stored token changed: %v vs %v", again["access_token"], tok["access_token"])
	}
}

func TestRefreshAheadWithoutReaders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, p, id := setupRotating(t, dbURL)
		h.clock.Advance(time.Hour - 90*time.Second) // 90 s left: inside a 2-minute window
		n, err := h.broker.RefreshDue(context.Background(), broker.WorkerOptions{Window: 2 * time.Minute, Interval: time.Nanosecond})
		if err != nil || n != 1 || p.refreshes.Load() != 1 {
			t.Fatalf("refreshed %d err %v provider %d", n, err, p.refreshes.Load())
		}
		if st, tok := h.token(id); st != 200 || tok["access_token"] != "at-2" {
			t.Fatalf("%d %v", st, tok)
		}
	})
}

func TestExpiryFromJWTWhenExpiresInMissing(t *testing.T) {
	h := newHarness(t, sqliteURL(t))
	p := newRotatingProvider(t)
	jwtExp := h.clock.Now().Add(42 * time.Minute).Unix()
	p.set(func(p *rotatingProvider) { p.noExpiry, p.jwtExp = true, jwtExp })
	h.registerProvider(p.profile("jwt"))
	id := connect(t, h, "jwt")
	st, tok := h.token(id)
	want := time.Unix(jwtExp, 0).UTC().Format(time.RFC3339)
	if st != 200 || tok["expires_at"] != want || tok["expires_at_source"] != "jwt_exp" {
		t.Fatalf("%d %v", st, tok)
	}
	var conn map[string]any
	h.do("GET", "/connections/"+id, nil, &conn)
	if conn["token_expires_at"] != want || conn["token_expiry_source"] != "jwt_exp" {
		t.Fatalf("connection view %v", conn)
	}
}

func TestUnknownExpiryRefreshedOnDemand(t *testing.T) {
	h := newHarness(t, sqliteURL(t))
	p := newRotatingProvider(t)
	p.set(func(p *rotatingProvider) { p.noExpiry = true })
	h.registerProvider(p.profile("opaque"))
	id := connect(t, h, "opaque")
	h.clock.Advance(100 * time.Hour)
	if st, tok := h.token(id); st != 200 || tok["expires_at_source"] != "unknown" || p.refreshes.Load() != 0 {
		t.Fatalf("unknown expiry: %d %v", st, tok)
	}
	// The agent saw a 401 and asks for a refresh.
	var tok map[string]any
	if st := h.do("POST", "/connections/"+id+"/refresh", nil, &tok); st != 200 || tok["access_token"] != "at-2" {
		t.Fatalf("forced refresh: %d %v", st, tok)
	}
}

func TestDeleteRevokesAtProvider(t *testing.T) {
	h, p, id := setupRotating(t, sqliteURL(t))
	var revoked atomic.Value
	p.fakeProvider.mu.Lock()
	p.revoke = func(r *http.Request) {
		revoked.Store(r.PostFormValue("token") + "|" + r.PostFormValue("token_type_hint"))
	}
	p.fakeProvider.mu.Unlock()
	if st := h.do("DELETE", "/connections/"+id, nil, nil); st != 204 {
		t.Fatalf("delete %d", st)
	}
	if revoked.Load() != "rt-1|refresh_token" {
		t.Fatalf("revocation request: %v", revoked.Load())
	}
	if _, err := h.store.GetToken(context.Background(), id); err == nil {
		t.Fatal("ciphertext kept")
	}
	events, _ := h.store.ListAudit(context.Background(), storage.AuditFilter{ConnectionID: id})
	if len(events) == 0 || events[0].Type != "connection.deleted" || events[0].Detail["revoked_at_provider"] != "yes" {
		t.Fatalf("audit %+v", events)
	}
}

// TestBackoffSharedAcrossBrokers: after one broker's refresh fails at the
// provider, the other brokers waiting on the lease honour the connection's
// backoff instead of calling the provider again.
func TestBackoffSharedAcrossBrokers(t *testing.T) {
	dbURL := backends(t)["postgres"](t)
	h, p, id := setupRotating(t, dbURL)
	p.set(func(p *rotatingProvider) {
		p.delay = 300 * time.Millisecond
		p.fail = func() (int, string) { return 500, `{"error":"server_error"}` }
	})
	brokers := []*harness{h}
	for i := 0; i < 2; i++ {
		o := newHarness(t, dbURL)
		o.clock = h.clock
		o.start()
		brokers = append(brokers, o)
	}
	h.clock.Advance(2 * time.Hour)
	var wg sync.WaitGroup
	statuses := make(chan int, 3)
	for _, b := range brokers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, _ := b.token(id)
			statuses <- st
		}()
	}
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != 503 {
			t.Fatalf("status %d, want 503 for an expired token during provider trouble", st)
		}
	}
	if n := p.refreshes.Load(); n != 1 {
		t.Fatalf("provider saw %d refreshes; the backoff was not shared", n)
	}
	if h.status(id) != storage.StatusActive {
		t.Fatal("transient failure changed the status")
	}
}

func TestCleanupFailsExpiredConsents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, _ := setupFake(t, dbURL)
		old := h.consent("fake", nil, returnURL)
		h.clock.Advance(9 * time.Minute)
		young := h.consent("fake", nil, returnURL)
		h.clock.Advance(2 * time.Minute) // old is past its 10 minutes, young is not
		n, err := h.broker.CleanupPending(context.Background())
		if err != nil || n != 1 {
			t.Fatalf("cleaned %d, err %v", n, err)
		}
		c, _ := h.store.GetConnection(context.Background(), old.ConnectionID)
		if c.Status != storage.StatusFailed || c.StatusReason != "consent_expired" || c.PKCEVerifier != nil {
			t.Fatalf("expired consent: %s %s verifier=%v", c.Status, c.StatusReason, c.PKCEVerifier != nil)
		}
		if h.status(young.ConnectionID) != storage.StatusPending {
			t.Fatal("a live consent was failed")
		}
	})
}
