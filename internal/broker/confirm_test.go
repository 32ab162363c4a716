package broker_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/broker"
	"github.com/dromos-dev/dromos/internal/confirm"
	"github.com/dromos-dev/dromos/internal/storage"
)

const confirmURL = "https://app.example.test/confirm?step=1"

// confirmSetup registers a provider with a revocation endpoint and
// records the tokens it is asked to revoke.
type confirmSetup struct {
	h       *harness
	mu      sync.Mutex
	revoked []string
}

func newConfirmSetup(t *testing.T, dbURL string) *confirmSetup {
	h, f := setupFake(t, dbURL)
	s := &confirmSetup{h: h}
	prof := f.profile("revocable")
	prof["revocation_url"] = f.srv.URL + "/revoke"
	h.registerProvider(prof)
	f.mu.Lock()
	f.revoke = func(r *http.Request) {
		s.mu.Lock()
		s.revoked = append(s.revoked, r.PostFormValue("token"))
		s.mu.Unlock()
	}
	f.mu.Unlock()
	return s
}

func (s *confirmSetup) revokedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.revoked...)
}

// newBrowser is a browser of its own (cookie jar), not following redirects.
func newBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// startConfirmed has agent "mallory-app" request a connection for user
// mallory that requires confirmation, and has browser consent in it. It
// returns the connection id and the confirmation value confirm_url got.
func (s *confirmSetup) startConfirmed(t *testing.T, browser *http.Client, code string) (string, string) {
	t.Helper()
	h := s.h
	var c consentResp
	if st := h.do("POST", "/auth/consent-spec", map[string]any{"workspace_id": "ws-1", "user_id": "mallory",
		"client_name": "mallory-app", "provider_name": "revocable", "return_url": returnURL,
		"confirm_url": confirmURL}, &c); st != http.StatusOK {
		t.Fatalf("consent: %d", st)
	}
	get(t, browser, c.AuthURL)
	resp := get(t, browser, h.srv.URL+"/auth/callback?"+url.Values{"state": {c.State}, "code": {code}}.Encode())
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("callback: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	q := loc.Query()
	if loc.Host != "app.example.test" || loc.Path != "/confirm" || q.Get("step") != "1" || q.Get("connection_id") != c.ConnectionID ||
		q.Get("confirmation") == "" || q.Has("status") {
		t.Fatalf("callback sent the browser to %s, want confirm_url with a confirmation", loc)
	}
	if st := h.status(c.ConnectionID); st != storage.StatusAwaitingConfirmation {
		t.Fatalf("status after the exchange %s, want awaiting_confirmation", st)
	}
	var body map[string]any
	if st := h.do("GET", "/connections/"+c.ConnectionID+"/token", nil, &body); st != http.StatusConflict || body["access_token"] != nil {
		t.Fatalf("token read while awaiting confirmation: %d %v", st, body)
	}
	return c.ConnectionID, q.Get("confirmation")
}

type confirmResp struct {
	ConnectionID string `json:"connection_id"`
	Status       string `json:"status"`
	ContinueURL  string `json:"continue_url"`
	envelope
}

func (s *confirmSetup) confirm(t *testing.T, value, user string) (int, confirmResp) {
	t.Helper()
	var out confirmResp
	st := s.h.do("POST", "/connections/confirm", map[string]any{"confirmation": value, "user_id": user, "client_name": "mallory-app"}, &out)
	return st, out
}

// wantErased checks the connection failed for reason, holds no token,
// the provider was asked to revoke the grant, the audit trail says so,
// and no log line carries the confirmation value.
func (s *confirmSetup) wantErased(t *testing.T, id, reason string, values ...string) {
	t.Helper()
	h := s.h
	c, err := h.store.GetConnection(context.Background(), id)
	if err != nil || c.Status != storage.StatusFailed || c.StatusReason != reason {
		t.Fatalf("connection %s/%s (%v), want failed/%s", c.Status, c.StatusReason, err, reason)
	}
	h.assertNoToken(id)
	if got := s.revokedTokens(); len(got) != 1 || got[0] != "fake-refresh" {
		t.Fatalf("provider revocations %q, want the grant's refresh token once", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		events, err := h.store.ListAudit(context.Background(), storage.AuditFilter{ConnectionID: id})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range events {
			if e.Type == "confirmation.failed" && e.Detail["reason"] == reason && e.Detail["revoked_at_provider"] == "yes" {
				found = true
			}
			for _, v := range values {
				if strings.Contains(toJSON(e), v) {
					t.Fatalf("audit event %s carries the confirmation value", e.Type)
				}
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no confirmation.failed audit event with reason %s: %v", reason, events)
		}
		time.Sleep(20 * time.Millisecond)
	}
	logs := h.logs.String()
	for _, v := range values {
		if strings.Contains(logs, v) {
			t.Fatal("a log line carries the confirmation value")
		}
	}
	if strings.Contains(logs, "fake-refresh") || strings.Contains(logs, "fake-access") {
		t.Fatal("a log line carries a token")
	}
}

// The attack: mallory's agent starts a connection for mallory and sends
// the link to alice, who consents in her own browser. The application,
// where alice is signed in, confirms as alice: the connection fails, the
// grant is revoked at the provider and erased, and no token was ever
// readable.
func TestConfirmationRefusesAnotherUser(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newConfirmSetup(t, dbURL)
		alice := newBrowser(t)
		id, value := s.startConfirmed(t, alice, "alice-code")
		st, out := s.confirm(t, value, "alice")
		if st != http.StatusConflict || out.Code != "user_mismatch" || out.ContinueURL != "" {
			t.Fatalf("confirm as alice: %d %+v, want 409 user_mismatch", st, out)
		}
		s.wantErased(t, id, "user_mismatch", value)
		// The value is spent: nothing more happens with it.
		if st, out := s.confirm(t, value, "mallory"); st != http.StatusConflict || out.Code != "confirmation_over" {
			t.Fatalf("confirm again as mallory: %d %+v", st, out)
		}
		if got := s.revokedTokens(); len(got) != 1 {
			t.Fatalf("%d revocations, want 1", len(got))
		}
	})
}

// The honest path: mallory consents in mallory's browser, the
// application confirms as mallory and sends the browser on.
func TestConfirmationHonestPath(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newConfirmSetup(t, dbURL)
		h := s.h
		mallory := newBrowser(t)
		id, value := s.startConfirmed(t, mallory, "mallory-code")
		st, out := s.confirm(t, value, "mallory")
		if st != http.StatusOK || out.ConnectionID != id || !strings.HasPrefix(out.ContinueURL, h.srv.URL+"/auth/confirm?confirmation=") {
			t.Fatalf("confirm as mallory: %d %+v", st, out)
		}
		if h.status(id) != storage.StatusAwaitingConfirmation {
			t.Fatal("active before the browser came back")
		}
		resp := get(t, mallory, out.ContinueURL)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc.Host != "app.example.test" || loc.Query().Get("status") != "success" ||
			loc.Query().Get("connection_id") != id || loc.Query().Get("keep") != "1" {
			t.Fatalf("continue: %d %s", resp.StatusCode, loc)
		}
		var tok map[string]any
		if st := h.do("GET", "/connections/"+id+"/token?client_name=mallory-app", nil, &tok); st != http.StatusOK || tok["access_token"] != "fake-access-mallory-code" {
			t.Fatalf("token after confirmation: %d %v", st, tok)
		}
		// Both values are spent; the connection stays active.
		if st, out := s.confirm(t, value, "mallory"); st != http.StatusConflict || out.Code != "confirmation_over" {
			t.Fatalf("replay of the first value: %d %+v", st, out)
		}
		if resp := get(t, mallory, out.ContinueURL); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("replay of the continue URL: %d", resp.StatusCode)
		}
		if h.status(id) != storage.StatusActive || len(s.revokedTokens()) != 0 {
			t.Fatalf("after replays: %s, %d revocations", h.status(id), len(s.revokedTokens()))
		}
		if strings.Contains(h.logs.String(), value) {
			t.Fatal("a log line carries the confirmation value")
		}
	})
}

// The value reaches another browser (copied out of the victim's): the
// application there confirms as its own user, but the broker sees the
// browser lacks the flow's cookie.
func TestConfirmationFromAnotherBrowserFails(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newConfirmSetup(t, dbURL)
		alice, mallory := newBrowser(t), newBrowser(t)
		id, value := s.startConfirmed(t, alice, "alice-code")
		st, out := s.confirm(t, value, "mallory")
		if st != http.StatusOK {
			t.Fatalf("confirm: %d %+v", st, out)
		}
		resp := get(t, mallory, out.ContinueURL)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc.Query().Get("status") != "error" || loc.Query().Get("error") != "browser_mismatch" {
			t.Fatalf("continue in another browser: %d %s", resp.StatusCode, loc)
		}
		s.wantErased(t, id, "browser_mismatch", value, out.ContinueURL)
		// The right browser is too late now.
		if resp := get(t, alice, out.ContinueURL); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("continue in the consenting browser afterwards: %d", resp.StatusCode)
		}
	})
}

func TestConfirmationReplayFails(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newConfirmSetup(t, dbURL)
		id, value := s.startConfirmed(t, newBrowser(t), "c1")
		if st, _ := s.confirm(t, value, "mallory"); st != http.StatusOK {
			t.Fatalf("first use: %d", st)
		}
		st, out := s.confirm(t, value, "mallory")
		if st != http.StatusConflict || out.Code != "confirmation_reused" {
			t.Fatalf("replay: %d %+v", st, out)
		}
		s.wantErased(t, id, "confirmation_reused", value)
	})
}

func TestConfirmationAfterFiveMinutesFails(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newConfirmSetup(t, dbURL)
		id, value := s.startConfirmed(t, newBrowser(t), "c1")
		s.h.clock.Advance(5*time.Minute - time.Second)
		if st, _ := s.confirm(t, "not-a-value", "mallory"); st != http.StatusBadRequest {
			t.Fatalf("malformed value: %d", st)
		}
		s.h.clock.Advance(time.Second)
		st, out := s.confirm(t, value, "mallory")
		if st != http.StatusConflict || out.Code != "confirmation_expired" {
			t.Fatalf("after five minutes: %d %+v", st, out)
		}
		s.wantErased(t, id, "confirmation_expired", value)
	})
}

// Two confirmations at once with one value: exactly one passes.
func TestConcurrentConfirmations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newConfirmSetup(t, dbURL)
		_, value := s.startConfirmed(t, newBrowser(t), "c1")
		var wg sync.WaitGroup
		sts := make([]int, 2)
		for i := range sts {
			wg.Go(func() {
				var out confirmResp
				sts[i] = s.h.do("POST", "/connections/confirm", map[string]any{"confirmation": value, "user_id": "mallory", "client_name": "mallory-app"}, &out)
			})
		}
		wg.Wait()
		if (sts[0] == http.StatusOK) == (sts[1] == http.StatusOK) {
			t.Fatalf("statuses %v, want exactly one 200", sts)
		}
	})
}

// Another agent cannot confirm (or fail) mallory's connection.
func TestConfirmationIsTheOwnersOnly(t *testing.T) {
	s := newConfirmSetup(t, sqliteURL(t))
	id, value := s.startConfirmed(t, newBrowser(t), "c1")
	var out confirmResp
	st := s.h.do("POST", "/connections/confirm", map[string]any{"confirmation": value, "user_id": "alice", "client_name": "other-app"}, &out)
	if st != http.StatusBadRequest || out.Code != "invalid_confirmation" {
		t.Fatalf("another agent: %d %+v", st, out)
	}
	if s.h.status(id) != storage.StatusAwaitingConfirmation {
		t.Fatalf("status %s after another agent's attempt", s.h.status(id))
	}
}

func TestConfirmURLIsChecked(t *testing.T) {
	h, _ := setupFake(t, sqliteURL(t))
	for name, body := range map[string]map[string]any{
		"required without a URL": {"require_confirmation": true},
		"not absolute":           {"confirm_url": "/confirm"},
	} {
		t.Run(name, func(t *testing.T) {
			req := map[string]any{"workspace_id": "ws-1", "user_id": "u", "provider_name": "fake", "return_url": returnURL}
			for k, v := range body {
				req[k] = v
			}
			var e envelope
			if st := h.do("POST", "/auth/consent-spec", req, &e); st != http.StatusBadRequest {
				t.Fatalf("%d %+v", st, e)
			}
		})
	}
}

// A confirmation nobody completes does not keep its grant: the first read
// after five minutes fails the connection and revokes the grant.
func TestLapsedConfirmationIsRevokedOnRead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newConfirmSetup(t, dbURL)
		id, value := s.startConfirmed(t, newBrowser(t), "c1")
		var view map[string]any
		if st := s.h.do("GET", "/connections/"+id, nil, &view); st != http.StatusOK || view["status"] != "awaiting_confirmation" {
			t.Fatalf("read before expiry: %d %v", st, view)
		}
		if len(s.revokedTokens()) != 0 {
			t.Fatal("revoked before expiry")
		}
		s.h.clock.Advance(5 * time.Minute)
		if st := s.h.do("GET", "/connections/"+id, nil, &view); st != http.StatusOK || view["status"] != "failed" || view["status_reason"] != "confirmation_expired" {
			t.Fatalf("read after expiry: %d %v", st, view)
		}
		s.wantErased(t, id, "confirmation_expired", value)
	})
}

// A confirmation nobody completes and nobody reads does not keep its
// grant either: the worker's sweep fails it once its five minutes are
// over, as a late value would (revoked at the provider, erased, audited,
// connection.failed for webhooks), and leaves one with time left alone.
func TestWorkerSweepsLapsedConfirmations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newConfirmSetup(t, dbURL)
		lapsed, value := s.startConfirmed(t, newBrowser(t), "c1")
		s.h.clock.Advance(2 * time.Minute)
		fresh, _ := s.startConfirmed(t, newBrowser(t), "c2")
		s.h.clock.Advance(3 * time.Minute)

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); s.h.broker.RunWorker(ctx, broker.WorkerOptions{Interval: time.Hour}) }()
		// The pass ends with the audit event, after the revocation.
		deadline := time.Now().Add(10 * time.Second)
		for !s.audited(t, lapsed, "confirmation.failed") {
			if time.Now().After(deadline) {
				t.Fatal("the worker never failed the lapsed confirmation")
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		<-done
		s.wantErased(t, lapsed, "confirmation_expired", value)
		evs, err := s.h.store.ListLifecycleEvents(context.Background(), lapsed)
		if err != nil || len(evs) == 0 || evs[len(evs)-1].Type != storage.LifecycleFailed {
			t.Fatalf("lifecycle events %v (%v), want connection.failed last", evs, err)
		}
		if st := s.h.status(fresh); st != storage.StatusAwaitingConfirmation {
			t.Fatalf("confirmation with two minutes left: %s", st)
		}
		if _, err := s.h.store.GetToken(context.Background(), fresh); err != nil {
			t.Fatalf("its token: %v", err)
		}
	})
}

// audited reports whether the connection's audit trail has an event of
// type typ.
func (s *confirmSetup) audited(t *testing.T, id, typ string) bool {
	t.Helper()
	events, err := s.h.store.ListAudit(context.Background(), storage.AuditFilter{ConnectionID: id})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Type == typ {
			return true
		}
	}
	return false
}

// Sweeps running at once (replicas' workers) fail each lapsed
// confirmation once: one revocation and one audit event per connection.
func TestConcurrentSweepsRevokeOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newConfirmSetup(t, dbURL)
		var ids []string
		for _, code := range []string{"c1", "c2", "c3"} {
			id, _ := s.startConfirmed(t, newBrowser(t), code)
			ids = append(ids, id)
		}
		s.h.clock.Advance(confirm.TTL)
		const sweeps = 4
		counts := make([]int, sweeps)
		var wg sync.WaitGroup
		for i := range sweeps {
			wg.Go(func() {
				n, err := s.h.broker.SweepConfirmations(context.Background())
				if err != nil {
					t.Error(err)
				}
				counts[i] = n
			})
		}
		wg.Wait()
		total := 0
		for _, n := range counts {
			total += n
		}
		if total != len(ids) || len(s.revokedTokens()) != len(ids) {
			t.Fatalf("sweeps failed %v connections and revoked %d grants, want %d each", counts, len(s.revokedTokens()), len(ids))
		}
		for _, id := range ids {
			events, err := s.h.store.ListAudit(context.Background(), storage.AuditFilter{ConnectionID: id})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range events {
				if e.Type == "confirmation.failed" {
					n++
				}
			}
			if n != 1 || s.h.status(id) != storage.StatusFailed {
				t.Fatalf("%s: %d confirmation.failed events, status %s", id, n, s.h.status(id))
			}
		}
		if n, err := s.h.broker.SweepConfirmations(context.Background()); n != 0 || err != nil {
			t.Fatalf("a sweep after: %d (%v)", n, err)
		}
	})
}
