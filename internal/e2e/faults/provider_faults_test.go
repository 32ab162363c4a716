package faults_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// exchangeTimeout is the broker's bound on one provider call
// (exchange.DefaultTimeout): a provider slower than this is failing, one
// faster is merely slow.
const exchangeTimeout = 10 * time.Second

// TestProviderTrouble: the provider is slow, times out, answers 500 or
// garbage when the broker refreshes. A token still valid (inside the
// refresh margin, not expired) keeps being served; an expired one is
// answered 503 with Retry-After; retries back off; the connection never
// becomes expired. A provider that is slow but within the broker's timeout
// simply refreshes.
func TestProviderTrouble(t *testing.T) {
	t.Parallel()
	db := postgresURL(t)
	s := newSecrets(t)
	broker := startBroker(t, "broker", db, s)
	gw := startGateway(t, "gateway", broker, s)

	modes := []struct {
		name    string
		mode    refreshMode
		delay   time.Duration
		refresh bool // the refresh succeeds in the end
	}{
		{"slow 5s", refreshOK, 5 * time.Second, true},
		{"timeout", refreshOK, exchangeTimeout + time.Second, false},
		{"500", refreshFail500, 0, false},
		{"garbage", refreshGarbage, 0, false},
	}
	tokens := []struct {
		name    string
		ttl     int           // expires_in of the code exchange
		age     time.Duration // how old the token is at the first read
		expired bool
	}{
		// The margin is a third of a 60-second token's life: 20 s. At 41 s
		// it is inside, with room left for a refresh that times out.
		{"valid inside the margin", 60, 41 * time.Second, false},
		{"expired", 1, 1500 * time.Millisecond, true},
	}
	for i, m := range modes {
		for j, tk := range tokens {
			t.Run(m.name+"/"+tk.name, func(t *testing.T) {
				t.Parallel()
				// Connected only now: parallel subtests may wait for a slot
				// longer than the token lives.
				name := fmt.Sprintf("p%d%d", i, j)
				p := newFakeProvider(t, providerBehaviour{codeTTL: tk.ttl, refreshTTL: 3600, refresh: m.mode, refreshDelay: m.delay})
				register(t, broker, p, name)
				id := connect(t, broker, name)
				old := p.lastAccessToken()
				time.Sleep(tk.age)
				hc := newClient(exchangeTimeout + 20*time.Second)
				fromBroker := func() answer { return must(t, hc, "GET", broker.url+"/connections/"+id+"/token", "", nil) }
				first := fromBroker()
				switch {
				case m.refresh:
					if first.status != http.StatusOK || first.str("access_token") == old || first.str("access_token") != p.lastAccessToken() {
						t.Fatalf("slow but successful refresh: %d %s", first.status, first.body)
					}
				case tk.expired:
					if first.status != http.StatusServiceUnavailable || first.header.Get("Retry-After") == "" {
						t.Fatalf("expired token, failing provider: %d Retry-After=%q %s", first.status, first.header.Get("Retry-After"), first.body)
					}
				default:
					if first.status != http.StatusOK || first.str("access_token") != old {
						t.Fatalf("still-valid token, failing provider: %d %s", first.status, first.body)
					}
				}
				calls := p.refreshes.Load()
				if calls < 1 {
					t.Fatal("the provider was never asked")
				}
				// Again, from the broker and through the gateway: the same
				// answer, and no new provider call while the connection backs
				// off (or now that its token is fresh).
				for k, again := range []answer{
					fromBroker(),
					fromBroker(),
					must(t, hc, "GET", gw.url+"/v1/token/"+id, s.agentKey, nil),
				} {
					if again.status != first.status || again.str("access_token") != first.str("access_token") ||
						(again.status == http.StatusServiceUnavailable && again.header.Get("Retry-After") == "") {
						t.Fatalf("read %d: %d %s, first was %d", k+2, again.status, again.body, first.status)
					}
				}
				if n := p.refreshes.Load(); n != calls {
					t.Fatalf("provider asked %d more times while backing off", n-calls)
				}
				c := status(t, broker, id)
				if c["status"] != "active" {
					t.Fatalf("connection: %v", c)
				}
				if !m.refresh && (c["last_error_class"] != "transient" || c["next_refresh_at"] == nil) {
					t.Fatalf("failure not recorded as transient with a retry time: %v", c)
				}
				assertNoLeak(t, p.secrets(), broker, gw)
			})
		}
	}
}
