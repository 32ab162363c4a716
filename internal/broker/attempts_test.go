package broker_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dromos-dev/dromos/internal/storage"
)

// noFollowBrowser is a fresh browser that does not follow redirects.
func noFollowBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func getStatus(t *testing.T, c *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// reconnect asks for a new consent of an existing connection.
func reconnect(h *harness, connID, workspace string, scopes []string) (int, consentResp) {
	var out consentResp
	body := map[string]any{"workspace_id": workspace, "user_id": "u-1", "provider_name": "fake",
		"return_url": returnURL, "connection_id": connID}
	if scopes != nil {
		body["scopes"] = scopes
	}
	st := h.do("POST", "/auth/consent-spec", body, &out)
	return st, out
}

// After a reconnect, the authUrl and state of the earlier attempt are dead:
// neither its /auth/start nor its callback completes the new attempt.
func TestEarlierAttemptStateRefusedAfterReconnect(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, _ := setupFake(t, dbURL)
		first := h.consent("fake", nil, returnURL)
		h.callback(url.Values{"state": {first.State}, "error": {"access_denied"}})
		if st := h.status(first.ConnectionID); st != storage.StatusFailed {
			t.Fatalf("denied attempt: %s", st)
		}
		// A reconnect in the same second as the first attempt would share
		// its expiry to the second; the broker keeps them apart anyway.
		st, second := reconnect(h, first.ConnectionID, "ws-1", nil)
		if st != http.StatusOK || second.ConnectionID != first.ConnectionID || second.State == first.State {
			t.Fatalf("reconnect: %d %+v", st, second)
		}

		attacker := noFollowBrowser(t)
		if resp := getStatus(t, attacker, first.AuthURL); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("earlier attempt's authUrl: %d %s, want 400", resp.StatusCode, resp.Header.Get("Location"))
		}
		resp := getStatus(t, attacker, h.srv.URL+"/auth/callback?"+url.Values{"state": {first.State}, "code": {"attacker-code"}}.Encode())
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("earlier attempt's callback: %d %s, want 400", resp.StatusCode, resp.Header.Get("Location"))
		}
		if st := h.status(first.ConnectionID); st != storage.StatusPending {
			t.Fatalf("after the replay the connection is %s, want pending", st)
		}
		// The new attempt still completes.
		h.visitStart(second.AuthURL)
		if loc := h.callback(url.Values{"state": {second.State}, "code": {"user-code"}}).Header.Get("Location"); !strings.Contains(loc, "status=success") {
			t.Fatalf("new attempt: %s", loc)
		}
		var tok map[string]any
		if h.do("GET", "/connections/"+first.ConnectionID+"/token", nil, &tok); tok["access_token"] != "fake-access-user-code" {
			t.Fatalf("token %v", tok["access_token"])
		}
	})
}

// bindIdentity gives an active connection the identity an earlier OpenID
// consent would have left, then expires it.
func bindIdentity(t *testing.T, h *harness, connID string) {
	t.Helper()
	_, err := h.store.UpdateConnection(context.Background(), connID, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		c.Subject, c.Email, c.Issuer = "alice-sub", "alice@example.com", "https://issuer.example"
		c.Status = storage.StatusExpired
		return c, storage.TokenChange{Delete: true}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A connection bound to an account cannot be reconnected without proving
// that account again: the reconnect asks for openid (here refused at once,
// as this provider cannot verify id_tokens), and a callback that brings no
// verified id_token for a bound connection is refused.
func TestReconnectOfBoundConnectionNeedsIDToken(t *testing.T) {
	h, _ := setupFake(t, sqliteURL(t))
	c := h.consent("fake", nil, returnURL)
	h.callback(url.Values{"state": {c.State}, "code": {"alice-code"}})
	bindIdentity(t, h, c.ConnectionID)

	var env map[string]any
	st := h.do("POST", "/auth/consent-spec", map[string]any{"workspace_id": "ws-1", "user_id": "u-1", "provider_name": "fake",
		"scopes": []string{"read"}, "return_url": returnURL, "connection_id": c.ConnectionID}, &env)
	if msg, _ := env["message"].(string); st != http.StatusBadRequest || !strings.Contains(msg, "cannot verify id_tokens") {
		t.Fatalf("reconnect of a bound connection at a provider without id_token keys: %d %v", st, env)
	}
	if after, _ := h.store.GetConnection(context.Background(), c.ConnectionID); after.Status != storage.StatusExpired || after.Subject != "alice-sub" {
		t.Fatalf("refused reconnect changed the connection: %s %q", after.Status, after.Subject)
	}

	// A pending attempt of a bound connection without openid (started
	// before these checks existed) is refused at the callback.
	pending := h.consent("fake", []string{"read"}, returnURL)
	if _, err := h.store.UpdateConnection(context.Background(), pending.ConnectionID, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		c.Subject, c.Issuer = "alice-sub", "https://issuer.example"
		return c, storage.TokenChange{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	loc := h.callback(url.Values{"state": {pending.State}, "code": {"mallory-code"}}).Header.Get("Location")
	if !strings.Contains(loc, "error=identity_mismatch") {
		t.Fatalf("bound connection, no openid, no id_token: %s", loc)
	}
	after, _ := h.store.GetConnection(context.Background(), pending.ConnectionID)
	if after.Status != storage.StatusFailed || after.Subject != "alice-sub" {
		t.Fatalf("after: status %s subject %q", after.Status, after.Subject)
	}
	if _, err := h.store.GetToken(context.Background(), pending.ConnectionID); err == nil {
		t.Fatal("another account's token was stored")
	}
}

// A reconnect names a connection of the caller's own workspace; another
// workspace's is not found, and nothing about it changes.
func TestReconnectFromAnotherWorkspaceIsNotFound(t *testing.T) {
	h, _ := setupFake(t, sqliteURL(t))
	c := h.consent("fake", nil, returnURL)
	h.callback(url.Values{"state": {c.State}, "code": {"c1"}})
	if _, err := h.store.UpdateConnection(context.Background(), c.ConnectionID, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		c.Status = storage.StatusExpired
		return c, storage.TokenChange{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if st, _ := reconnect(h, c.ConnectionID, "ws-other", nil); st != http.StatusNotFound {
		t.Fatalf("reconnect from another workspace: %d, want 404", st)
	}
	after, _ := h.store.GetConnection(context.Background(), c.ConnectionID)
	if after.Status != storage.StatusExpired || after.ReturnURL != returnURL {
		t.Fatalf("connection changed: %s %s", after.Status, after.ReturnURL)
	}
	if _, err := h.store.GetToken(context.Background(), c.ConnectionID); err != nil {
		t.Fatalf("token row gone: %v", err)
	}
}

// workspace_id is bounded by what the signed state can carry: 255 bytes
// work, 256 are a 400, never a 500.
func TestWorkspaceIDLength(t *testing.T) {
	h, _ := setupFake(t, sqliteURL(t))
	for n, want := range map[int]int{255: http.StatusOK, 256: http.StatusBadRequest} {
		var out map[string]any
		st := h.do("POST", "/auth/consent-spec", map[string]any{"workspace_id": strings.Repeat("w", n),
			"provider_name": "fake", "return_url": returnURL}, &out)
		if st != want {
			t.Errorf("workspace_id of %d bytes: %d %v, want %d", n, st, out, want)
		}
	}
}

// The agent's return_url query comes back as written, ';' included, with
// the outcome replacing any status, error or connection_id it held.
func TestReturnURLQueryKeptAsWritten(t *testing.T) {
	h, _ := setupFake(t, sqliteURL(t))
	c := h.consent("fake", nil, "https://app.example.test/done?a=1;b=2&keep=%2Fx&status=stale&z")
	loc := h.callback(url.Values{"state": {c.State}, "code": {"c1"}}).Header.Get("Location")
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	want := "a=1;b=2&keep=%2Fx&z&connection_id=" + c.ConnectionID + "&status=success"
	if u.RawQuery != want {
		t.Fatalf("redirect query %q, want %q", u.RawQuery, want)
	}
}

// A connection deleted while its code is being exchanged leaves no live
// grant: the broker revokes what the provider issued.
func TestDeleteDuringExchangeRevokesTheGrant(t *testing.T) {
	h, f := setupFake(t, sqliteURL(t))
	prof := f.profile("fake2")
	prof["revocation_url"] = f.srv.URL + "/revoke"
	h.registerProvider(prof)
	var revoked atomic.Value
	f.mu.Lock()
	f.revoke = func(r *http.Request) { revoked.Store(r.PostFormValue("token")) }
	f.mu.Unlock()
	arrived, release := make(chan struct{}), make(chan struct{})
	base := f.respond
	f.setResponse(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		base(w, r)
	})

	c := h.consent("fake2", nil, returnURL)
	done := make(chan *http.Response)
	go func() { done <- h.callback(url.Values{"state": {c.State}, "code": {"c1"}}) }()
	<-arrived // the broker is exchanging the code
	if st := h.do("DELETE", "/connections/"+c.ConnectionID, nil, nil); st != http.StatusNoContent {
		t.Fatalf("delete during the exchange: %d", st)
	}
	close(release)
	resp := <-done
	if !strings.Contains(resp.Header.Get("Location"), "status=error") {
		t.Fatalf("callback after the deletion: %s", resp.Header.Get("Location"))
	}
	if got, _ := revoked.Load().(string); got != "fake-refresh" {
		t.Fatalf("revoked %q, want the issued refresh token", got)
	}
	if _, err := h.store.GetConnection(context.Background(), c.ConnectionID); err == nil {
		t.Fatal("the deleted connection came back")
	}
}

// The audit actor of a callback is the connection's client, never a
// client_name the browser's query carries.
func TestCallbackAuditActorIgnoresTheQuery(t *testing.T) {
	h, _ := setupFake(t, sqliteURL(t))
	c := h.consent("fake", nil, returnURL) // no client_name: the connection's is ""
	h.callback(url.Values{"state": {c.State}, "code": {"c1"}, "client_name": {"someone-else"}})
	events, err := h.store.ListAudit(context.Background(), storage.AuditFilter{ConnectionID: c.ConnectionID})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range events {
		if e.Type == "callback.succeeded" {
			found = true
			if e.Actor != "" {
				t.Fatalf("callback actor %q taken from the browser's query", e.Actor)
			}
		}
	}
	if !found {
		t.Fatalf("no callback.succeeded event in %d events", len(events))
	}
}

// A database that cannot be read is the broker's problem, not the link's:
// /auth/start and the callback answer 503 with Retry-After.
func TestPublicRoutesSay503WhenTheStoreIsDown(t *testing.T) {
	h, _ := setupFake(t, sqliteURL(t))
	c := h.consent("fake", nil, returnURL)
	h.store.Close()
	browser := noFollowBrowser(t)
	for name, u := range map[string]string{
		"start":    c.AuthURL,
		"callback": h.srv.URL + "/auth/callback?" + url.Values{"state": {c.State}, "code": {"c1"}}.Encode(),
	} {
		resp := getStatus(t, browser, u)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s with the store down: %d, Retry-After %q; want 503 with Retry-After", name, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
}

// A consent asking for openid at a provider that cannot verify id_tokens is
// refused before the user consents, not after the code is spent.
func TestOpenIDConsentNeedsVerificationKeys(t *testing.T) {
	h, f := setupFake(t, sqliteURL(t))
	var env map[string]any
	st := h.do("POST", "/auth/consent-spec", map[string]any{"workspace_id": "ws-1", "provider_name": "fake",
		"scopes": []string{"openid", "read"}, "return_url": returnURL}, &env)
	if msg, _ := env["message"].(string); st != http.StatusBadRequest || !strings.Contains(msg, "cannot verify id_tokens") {
		t.Fatalf("openid consent without issuer/JWKS: %d %v", st, env)
	}
	conns, err := h.store.ListConnections(context.Background(), storage.ConnectionFilter{})
	if err != nil || len(conns) != 0 || f.calls.Load() != 0 {
		t.Fatalf("%d connections stored, %d provider calls (%v)", len(conns), f.calls.Load(), err)
	}
}

// The flow binds the first browser that opens the authUrl: another
// browser holding the same authUrl (or its state) can neither start nor
// finish it, while the first browser may open it again.
func TestFlowBindsTheFirstBrowserOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, f := setupFake(t, dbURL)
		c := h.consentOnly("fake", nil, returnURL)
		if resp := h.visitStart(c.AuthURL); resp.StatusCode != http.StatusFound {
			t.Fatalf("user's start: %d", resp.StatusCode)
		}
		attacker := noFollowBrowser(t)
		if resp := getStatus(t, attacker, c.AuthURL); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("second browser's start: %d %s, want 400", resp.StatusCode, resp.Header.Get("Location"))
		}
		cb := h.srv.URL + "/auth/callback?" + url.Values{"state": {c.State}, "code": {"attacker-code"}}.Encode()
		if resp := getStatus(t, attacker, cb); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("second browser's callback: %d, want 400", resp.StatusCode)
		}
		if st := h.status(c.ConnectionID); st != storage.StatusPending || f.calls.Load() != 0 {
			t.Fatalf("after the attempts: %s, %d provider calls", st, f.calls.Load())
		}
		// The user's browser may open the link again and finish.
		if resp := h.visitStart(c.AuthURL); resp.StatusCode != http.StatusFound {
			t.Fatalf("user's second start: %d", resp.StatusCode)
		}
		if loc := h.callback(url.Values{"state": {c.State}, "code": {"user-code"}}).Header.Get("Location"); !strings.Contains(loc, "status=success") {
			t.Fatalf("user's callback: %s", loc)
		}
	})
}
