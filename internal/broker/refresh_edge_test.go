package broker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/broker"
	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/vault"
)

// A key rotation that re-seals the token row while a refresh is at the
// provider must not cost the rotated refresh token: the provider has
// already consumed the old one.
func TestKeyRotationDuringRefreshKeepsTheRotatedToken(t *testing.T) {
	h, p, id := setupRotating(t, sqliteURL(t))
	p.set(func(p *rotatingProvider) { p.delay = 300 * time.Millisecond })
	h.encKeys = []vault.Key{{ID: 2, Secret: [32]byte{42}}, encKey}
	h.stateKeys = []state.Key{{ID: 2, Secret: bytes.Repeat([]byte{43}, 32)}, stateKey}
	h.start()
	h.clock.Advance(2 * time.Hour)

	done := make(chan int, 1)
	go func() { st, _ := h.token(id); done <- st }()
	for p.refreshes.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := h.broker.RotateKeys(context.Background(), 10, nil); err != nil {
		t.Fatal(err)
	}
	if st := <-done; st != http.StatusOK {
		t.Fatalf("token read during the rotation: %d, want 200", st)
	}
	c, _ := h.store.GetConnection(context.Background(), id)
	if c.RefreshLeaseOwner != "" {
		t.Fatalf("lease still held by %q", c.RefreshLeaseOwner)
	}
	// The next refresh uses the rotated refresh token: no reuse, still active.
	h.clock.Advance(2 * time.Hour)
	if st, body := h.token(id); st != http.StatusOK {
		t.Fatalf("next refresh: %d %v", st, body)
	}
	if p.reused.Load() != 0 || h.status(id) != storage.StatusActive {
		t.Fatalf("provider saw %d reused refresh tokens; status %s", p.reused.Load(), h.status(id))
	}
}

// Connections whose token has no refresh token are not picked again on
// every worker pass, are not counted as refreshed, and do not starve the
// keep-alive of a connection that has one.
func TestWorkerSkipsConnectionsWithoutRefreshToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL)
		f := newFakeProvider(t)
		f.setResponse(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "gh-" + r.PostFormValue("code"), "token_type": "bearer"})
		})
		// Both providers' refresh tokens lapse after 36 idle hours: kept
		// alive after 24.
		nortProf := f.profile("nort")
		nortProf["refresh_token_idle_lifetime_seconds"] = 36 * 3600
		h.registerProvider(nortProf)
		p := newRotatingProvider(t)
		p.set(func(p *rotatingProvider) { p.noExpiry = true })
		opaqueProf := p.profile("opaque")
		opaqueProf["refresh_token_idle_lifetime_seconds"] = 36 * 3600
		h.registerProvider(opaqueProf)
		var nort []string
		for range 8 {
			nort = append(nort, connect(t, h, "nort"))
		}
		rt := connect(t, h, "opaque")
		h.clock.Advance(25 * time.Hour)

		opts := broker.WorkerOptions{Interval: time.Nanosecond, Batch: 3}
		total := 0
		for range 5 {
			n, err := h.broker.RefreshDue(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			total += n
		}
		if got := p.refreshes.Load(); got != 1 {
			t.Fatalf("keep-alive refreshes of the connection with a refresh token: %d, want 1", got)
		}
		if total != 1 {
			t.Fatalf("passes counted %d refreshes, want 1", total)
		}
		c, _ := h.store.GetConnection(context.Background(), nort[0])
		if c.Status != storage.StatusActive || !c.NextRefreshAt.After(h.clock.Now()) {
			t.Fatalf("connection without refresh token: status %s, next look %v", c.Status, c.NextRefreshAt)
		}
		if c2, _ := h.store.GetConnection(context.Background(), rt); c2.LastRefreshAt.IsZero() {
			t.Fatal("keep-alive did not run")
		}
	})
}

// A provider refusing the client credentials is asked again only after a
// backoff, by the worker and by readers alike.
func TestInvalidClientBacksOff(t *testing.T) {
	h, p, id := setupRotating(t, sqliteURL(t))
	p.set(func(p *rotatingProvider) { p.fail = func() (int, string) { return 401, `{"error":"invalid_client"}` } })
	h.clock.Advance(time.Hour - 30*time.Second) // inside the margin, still valid
	for range 4 {
		if _, err := h.broker.RefreshDue(context.Background(), broker.WorkerOptions{Interval: time.Nanosecond}); err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(time.Second)
	}
	for range 3 {
		if st, body := h.token(id); st != http.StatusOK {
			t.Fatalf("read of a still valid token during the backoff: %d %v", st, body)
		}
	}
	if got := p.refreshes.Load(); got != 1 {
		t.Fatalf("provider asked %d times during the backoff, want 1", got)
	}
	h.clock.Advance(2 * time.Minute)
	h.token(id)
	if got := p.refreshes.Load(); got != 2 {
		t.Fatalf("provider asked %d times after the backoff, want 2", got)
	}
}

// Members only the code exchange returned stay in the token answer after a
// refresh.
func TestExtrasSurviveRefresh(t *testing.T) {
	h := newHarness(t, sqliteURL(t))
	f := newFakeProvider(t)
	f.setResponse(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.PostFormValue("grant_type") == "authorization_code" {
			_, _ = w.Write([]byte(`{"access_token":"a1","token_type":"bearer","expires_in":14400,"refresh_token":"r1","account_id":"dbid:AAH4","uid":"12345",` +
				`"team":{"id":"T1"},"authed_user":{"id":"U1","access_token":"xoxp-old","token_type":"user"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"access_token":"a2","token_type":"bearer","expires_in":14400,"uid":"67890"}`))
	})
	h.registerProvider(f.profile("dbx"))
	id := connect(t, h, "dbx")
	h.clock.Advance(5 * time.Hour)
	st, after := h.token(id)
	if st != http.StatusOK || after["access_token"] != "a2" || after["account_id"] != "dbid:AAH4" || after["uid"] != "67890" {
		t.Fatalf("after refresh: %d %v (account_id kept, uid from the refresh)", st, after)
	}
	// A member holding a token the refresh did not renew is not kept.
	if team, _ := after["team"].(map[string]any); team["id"] != "T1" || after["authed_user"] != nil {
		t.Fatalf("after refresh: team %v (kept), authed_user %v (dropped: it holds the exchange's user token)", after["team"], after["authed_user"])
	}
}

// A connection deleted while its refresh is at the provider leaves no live
// grant: the deletion revokes the old refresh token, the refresher the one
// the provider just issued.
func TestDeleteDuringRefreshRevokesTheNewGrant(t *testing.T) {
	h := newHarness(t, sqliteURL(t))
	p := newRotatingProvider(t)
	prof := p.profile("rot")
	prof["revocation_url"] = p.srv.URL + "/revoke"
	h.registerProvider(prof)
	id := connect(t, h, "rot")

	var mu sync.Mutex
	var revoked []string
	p.fakeProvider.mu.Lock()
	p.fakeProvider.revoke = func(r *http.Request) {
		mu.Lock()
		revoked = append(revoked, r.PostFormValue("token"))
		mu.Unlock()
	}
	p.fakeProvider.mu.Unlock()
	arrived, release := make(chan struct{}), make(chan struct{})
	p.setResponse(func(w http.ResponseWriter, r *http.Request) {
		if r.PostFormValue("grant_type") == "refresh_token" {
			close(arrived)
			<-release
		}
		p.serve(w, r)
	})

	h.clock.Advance(2 * time.Hour)
	done := make(chan int, 1)
	go func() { st, _ := h.token(id); done <- st }()
	<-arrived
	if st := h.do("DELETE", "/connections/"+id, nil, nil); st != http.StatusNoContent {
		t.Fatalf("delete during the refresh: %d", st)
	}
	close(release)
	if st := <-done; st == http.StatusOK {
		t.Fatal("the read of a deleted connection answered 200")
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(revoked, []string{"rt-1", "rt-2"}) {
		t.Fatalf("revoked %v, want the old refresh token (deletion) and the new one (refresher)", revoked)
	}
}

// blippyStore refuses the next n token writes with ErrUnavailable, as a
// database failing over would.
type blippyStore struct {
	storage.Storage
	mu sync.Mutex
	n  int
}

func (s *blippyStore) UpdateConnection(ctx context.Context, id string, fn func(storage.Connection, *storage.Token) (storage.Connection, storage.TokenChange, error)) (storage.Connection, error) {
	return s.Storage.UpdateConnection(ctx, id, func(c storage.Connection, t *storage.Token) (storage.Connection, storage.TokenChange, error) {
		c, ch, err := fn(c, t)
		if err == nil && ch.Put != nil {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.n > 0 {
				s.n--
				return c, storage.TokenChange{}, fmt.Errorf("write: %w", storage.ErrUnavailable)
			}
		}
		return c, ch, err
	})
}

// A database blip between the provider's answer and the write does not
// lose the rotated refresh token: the write is tried again.
func TestRefreshedTokenWriteSurvivesADatabaseBlip(t *testing.T) {
	h, p, id := setupRotating(t, sqliteURL(t))
	blip := &blippyStore{}
	h.wrapStore = func(s storage.Storage) storage.Storage { blip.Storage = s; return blip }
	h.start()
	h.clock.Advance(2 * time.Hour)
	blip.mu.Lock()
	blip.n = 2
	blip.mu.Unlock()
	if st, tok := h.token(id); st != http.StatusOK || tok["access_token"] != "at-2" {
		t.Fatalf("refresh through a blip: %d %v", st, tok)
	}
	h.clock.Advance(2 * time.Hour)
	if st, tok := h.token(id); st != http.StatusOK || tok["access_token"] != "at-3" || p.reused.Load() != 0 {
		t.Fatalf("next refresh: %d %v, reused refresh tokens %d", st, tok, p.reused.Load())
	}
}

// The other order: the deletion is at the provider revoking the old refresh
// token while a refresh stores a new one. The deletion took the token row
// with it, so the refresh finds the connection revoked and revokes what it
// got; nothing stays valid at the provider.
func TestRefreshDuringDeletionRevokesTheNewGrant(t *testing.T) {
	h := newHarness(t, sqliteURL(t))
	p := newRotatingProvider(t)
	prof := p.profile("rot")
	prof["revocation_url"] = p.srv.URL + "/revoke"
	h.registerProvider(prof)
	id := connect(t, h, "rot")

	var mu sync.Mutex
	var revoked []string
	arrived, release := make(chan struct{}), make(chan struct{})
	p.fakeProvider.mu.Lock()
	p.fakeProvider.revoke = func(r *http.Request) {
		tok := r.PostFormValue("token")
		mu.Lock()
		revoked = append(revoked, tok)
		mu.Unlock()
		if tok == "rt-1" {
			close(arrived)
			<-release
		}
	}
	p.fakeProvider.mu.Unlock()

	done := make(chan int, 1)
	go func() { done <- h.do("DELETE", "/connections/"+id, nil, nil) }()
	<-arrived // the deletion is revoking rt-1 at the provider
	h.clock.Advance(2 * time.Hour)
	if st, tok := h.token(id); st == http.StatusOK {
		t.Fatalf("token read during the deletion: %d %v", st, tok)
	}
	close(release)
	if st := <-done; st != http.StatusNoContent {
		t.Fatalf("delete: %d", st)
	}
	mu.Lock()
	defer mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	// The fake records revocations without forgetting tokens: every token
	// it still accepts must have been revoked.
	for rt, valid := range p.valid {
		if valid && !slices.Contains(revoked, rt) {
			t.Fatalf("%s still valid at the provider after the deletion (revoked %v)", rt, revoked)
		}
	}
}

// A forced refresh (an agent saw its token refused) that fails at the
// provider says so, instead of handing back the refused token.
func TestForcedRefreshFailureIsNotTheOldToken(t *testing.T) {
	for name, fail := range map[string]func() (int, string){
		"provider down":         func() (int, string) { return 503, `{"error":"temporarily_unavailable"}` },
		"client secret refused": func() (int, string) { return 401, `{"error":"invalid_client"}` },
	} {
		t.Run(name, func(t *testing.T) {
			h, p, id := setupRotating(t, sqliteURL(t))
			p.set(func(p *rotatingProvider) { p.fail = fail })
			var out map[string]any
			st := h.do("POST", "/connections/"+id+"/refresh", nil, &out)
			if st == http.StatusOK || out["access_token"] != nil {
				t.Fatalf("forced refresh failing at the provider: %d %v", st, out)
			}
			// A plain read still gets the valid token.
			if st, tok := h.token(id); st != http.StatusOK || tok["access_token"] != "at-1" {
				t.Fatalf("plain read: %d %v", st, tok)
			}
		})
	}
}
