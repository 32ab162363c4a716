package faults_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestExactlyOneRefreshAcrossBrokers (P3): three broker processes share one
// PostgreSQL schema; 300 concurrent reads of a connection whose 1-second
// token has just expired, spread over the three, cause exactly one refresh
// at a provider that rotates refresh tokens, and every reader gets the one
// new access token.
func TestExactlyOneRefreshAcrossBrokers(t *testing.T) {
	t.Parallel()
	db := postgresURL(t)
	s := newSecrets(t)
	brokers := startBrokers(t, 3, db, s)
	p := newFakeProvider(t, providerBehaviour{codeTTL: 1, refreshTTL: 3600, refreshDelay: 300 * time.Millisecond, rotate: true})
	register(t, brokers[0], p, "rotating")
	id := connect(t, brokers[0], "rotating")
	first := p.lastAccessToken()
	time.Sleep(1100 * time.Millisecond) // the token expires

	const readers = 300
	hc := newClient(60 * time.Second)
	fire := make(chan struct{})
	answers := make([]answer, readers)
	errs := make([]error, readers)
	var wg sync.WaitGroup
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-fire
			answers[i], errs[i] = send(context.Background(), hc, "GET", brokers[i%3].url+"/connections/"+id+"/token", "", nil)
		}()
	}
	close(fire)
	wg.Wait()

	refreshed := p.lastAccessToken()
	if refreshed == first {
		t.Fatal("the provider issued no new token")
	}
	bad := 0
	for i := range readers {
		if errs[i] != nil || answers[i].status != http.StatusOK || answers[i].str("access_token") != refreshed {
			if bad < 5 {
				t.Errorf("reader %d (broker-%d): %s", i, i%3+1, describe(answers[i], errs[i]))
			}
			bad++
		}
	}
	if n := p.refreshes.Load(); n != 1 || bad != 0 || p.reused.Load() != 0 {
		t.Fatalf("provider saw %d refreshes (%d with a consumed refresh token); %d of %d readers did not get the new token",
			n, p.reused.Load(), bad, readers)
	}
	if c := status(t, brokers[2], id); c["status"] != "active" {
		t.Fatalf("connection after the refresh: %v", c)
	}
	// Each broker's readers share one in-process flight, whose leader goes
	// to the database for the lease: more than one broker doing so shows
	// the readers really contended across processes.
	var successes float64
	contended := 0
	for _, b := range brokers {
		successes += metric(t, b, `token_refresh_total{result="success"}`)
		waits := metric(t, b, "token_refresh_lock_wait_seconds_count")
		t.Logf("%s: lease claims or waits %v", b.name, waits)
		if waits > 0 {
			contended++
		}
	}
	if successes != 1 || contended < 2 {
		t.Fatalf("%v successful refreshes counted by the brokers; %d brokers went for the lease", successes, contended)
	}
	assertNoLeak(t, p.secrets(), brokers...)
}

// TestConsentAcrossReplicas: a consent requested through one gateway (and
// its broker) is started and finished in the browser on a third broker, and
// the token is then read through a second gateway in front of another
// broker. Replicas share nothing but the database and the keys.
func TestConsentAcrossReplicas(t *testing.T) {
	t.Parallel()
	db := postgresURL(t)
	s := newSecrets(t)
	brokers := startBrokers(t, 3, db, s)
	gw1 := startGateway(t, "gateway-1", brokers[0], s)
	gw2 := startGateway(t, "gateway-2", brokers[1], s)
	p := newFakeProvider(t, providerBehaviour{codeTTL: 3600, refreshTTL: 3600})
	register(t, brokers[1], p, "elsewhere")

	hc := newClient(20 * time.Second)
	a := must(t, hc, "POST", gw1.url+"/v1/request-connection", s.agentKey, map[string]any{
		"user_id": "u-7", "provider_name": "elsewhere", "scopes": []string{"read"}, "return_url": returnURL,
	})
	var c consent
	c.AuthURL, c.State, c.ConnectionID = a.str("authUrl"), a.str("state"), a.str("connection_id")
	if a.status != http.StatusOK || c.AuthURL == "" || c.ConnectionID == "" {
		t.Fatalf("request-connection through gateway-1: %d %s", a.status, a.body)
	}
	check := must(t, hc, "GET", gw2.url+"/v1/check-connection/"+c.ConnectionID, s.agentKey, nil)
	if check.status != http.StatusOK || check.str("status") != "pending" {
		t.Fatalf("check through gateway-2 before consent: %d %s", check.status, check.body)
	}

	br := browser(t)
	startFlow(t, br, c, brokers[2])
	finishFlow(t, br, c, brokers[2])

	check = must(t, hc, "GET", gw2.url+"/v1/check-connection/"+c.ConnectionID, s.agentKey, nil)
	if check.status != http.StatusOK || check.str("status") != "active" {
		t.Fatalf("check through gateway-2 after consent: %d %s", check.status, check.body)
	}
	want := p.lastAccessToken()
	for _, gw := range []*proc{gw2, gw1} {
		tok := must(t, hc, "GET", gw.url+"/v1/token/"+c.ConnectionID, s.agentKey, nil)
		if tok.status != http.StatusOK || tok.str("access_token") != want || tok.str("provider") != "elsewhere" {
			t.Fatalf("token through %s: %d %s", gw.name, tok.status, tok.body)
		}
		if _, leaked := tok.json(t)["refresh_token"]; leaked {
			t.Fatalf("%s handed the refresh token to the agent", gw.name)
		}
	}
	if n := p.exchanges.Load(); n != 1 {
		t.Fatalf("provider saw %d code exchanges", n)
	}
	assertNoLeak(t, p.secrets(), append(brokers, gw1, gw2)...)
}
