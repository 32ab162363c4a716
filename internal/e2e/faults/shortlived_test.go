package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// shortLife is the lifetime of every access token in TestShortLivedTokens,
// and shortInterval how often such a token is refreshed: when a third of
// its life is left (the refresh margin bounded by the lifetime,
// docs/LIFECYCLE.md).
const (
	shortLife     = 20 * time.Second
	shortInterval = shortLife - shortLife/3
	// tokenCacheStaleness is the brokers' default TOKEN_CACHE_STALENESS.
	tokenCacheStaleness = 500 * time.Millisecond
)

// TestShortLivedTokens: a provider issuing 20-second access tokens with
// rotating refresh tokens, three brokers and three gateways on one
// PostgreSQL, the brokers' background workers running. Each phase counts
// the refresh grants the provider sees:
//   - reads of a token issued just now refresh nothing;
//   - a forced refresh makes exactly one, its broker serves the new
//     token at once and every gateway does within TOKEN_CACHE_STALENESS;
//   - 300 concurrent reads 22 s after consent, over the three gateways,
//     after the token expired: exactly one refresh since the forced one
//     (by a reader, or by a worker just before), and all 300 readers get
//     the same new token;
//   - 50 reads a second for two minutes: at most one refresh per refresh
//     interval (plus one), no refresh token presented twice, every read
//     answered with an unexpired token.
func TestShortLivedTokens(t *testing.T) {
	t.Parallel()
	db := postgresURL(t)
	s := newSecrets(t)
	brokers := startBrokers(t, 3, db, s)
	var gws []*proc
	for i, b := range brokers {
		gws = append(gws, startGateway(t, fmt.Sprintf("gateway-%d", i+1), b, s))
	}
	life := int(shortLife / time.Second)
	p := newFakeProvider(t, providerBehaviour{codeTTL: life, refreshTTL: life, refreshDelay: 100 * time.Millisecond, rotate: true})
	register(t, brokers[0], p, "short")

	hc := newClient(60 * time.Second)
	a := must(t, hc, "POST", gws[0].url+"/v1/request-connection", s.agentKey, map[string]any{
		"user_id": "u-short", "provider_name": "short", "scopes": []string{"read"}, "return_url": returnURL,
	})
	c := consent{AuthURL: a.str("authUrl"), State: a.str("state"), ConnectionID: a.str("connection_id")}
	if a.status != http.StatusOK || c.ConnectionID == "" {
		t.Fatalf("request-connection: %d %s", a.status, a.body)
	}
	br := browser(t)
	startFlow(t, br, c, brokers[1])
	finishFlow(t, br, c, brokers[1])
	consented := time.Now()
	id := c.ConnectionID
	tokenURL := func(i int) string { return gws[i%len(gws)].url + "/v1/token/" + id }

	// burst sends n concurrent reads over the gateways, released at once.
	burst := func(n int) ([]answer, []error, time.Duration) {
		answers, errs := make([]answer, n), make([]error, n)
		fire := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-fire
				answers[i], errs[i] = send(context.Background(), hc, "GET", tokenURL(i), s.agentKey, nil)
			}()
		}
		start := time.Now()
		close(fire)
		wg.Wait()
		return answers, errs, time.Since(start)
	}
	// tokens counts the access tokens a burst handed out; failed reads
	// count under "".
	tokens := func(answers []answer, errs []error) map[string]int {
		out := map[string]int{}
		for i, a := range answers {
			if errs[i] != nil || a.status != http.StatusOK {
				if out[""] == 0 {
					t.Logf("failed read: %s", describe(a, errs[i]))
				}
				out[""]++
				continue
			}
			out[a.str("access_token")]++
		}
		return out
	}

	// A token issued just now: 300 reads (which also open the client's
	// connections to the gateways), no refresh.
	consentToken := p.lastAccessToken()
	answers, errs, _ := burst(300)
	got := tokens(answers, errs)
	if n := p.refreshes.Load(); n != 0 || len(got) != 1 || got[consentToken] != 300 {
		t.Errorf("reads of a token issued just now: %d provider refreshes, tokens handed out %v", n, redactCounts(got, p.prefix))
	}

	// Forced refresh through a gateway: exactly one provider refresh; the
	// broker that made it serves its token at once, and every gateway
	// does once the other brokers' token caches caught up (they may serve
	// the previous, still valid, token for up to TOKEN_CACHE_STALENESS,
	// 500 ms by default: docs/OPERATIONS.md).
	before := p.refreshes.Load()
	f := must(t, hc, "POST", gws[1].url+"/v1/refresh/"+id, s.agentKey, nil)
	forced := p.lastAccessToken()
	if f.status != http.StatusOK || f.str("access_token") != forced || forced == consentToken {
		t.Errorf("forced refresh: %d, handed out the newest token: %v", f.status, f.str("access_token") == forced)
	}
	for range 3 {
		if r := must(t, hc, "GET", gws[1].url+"/v1/token/"+id, s.agentKey, nil); r.str("access_token") != forced {
			t.Errorf("the refreshing broker served %s right after its refresh, not the new token", redactCounts(map[string]int{r.str("access_token"): 1}, p.prefix))
		}
	}
	time.Sleep(tokenCacheStaleness + 50*time.Millisecond)
	answers, errs, _ = burst(30)
	got = tokens(answers, errs)
	afterForced := p.refreshes.Load()
	if n := afterForced - before; n != 1 || len(got) != 1 || got[forced] != 30 {
		t.Errorf("forced refresh: %d provider refreshes, then reads handed out %v", n, redactCounts(got, p.prefix))
	}
	t.Logf("forced refresh: %d provider refresh(es)", afterForced-before)

	// The storm, 22 s after consent: the forced token has expired.
	time.Sleep(time.Until(consented.Add(shortLife + 2*time.Second)))
	before = p.refreshes.Load()
	byWorker := before - afterForced // after the forced refresh, before the storm
	answers, errs, took := burst(300)
	got = tokens(answers, errs)
	stormRefreshes := p.refreshes.Load() - before
	newest := p.lastAccessToken()
	if stormRefreshes+byWorker != 1 || len(got) != 1 || got[newest] != 300 || newest == forced {
		t.Errorf("storm: %d provider refreshes during it, %d by a worker just before; tokens handed out %v",
			stormRefreshes, byWorker, redactCounts(got, p.prefix))
	}
	t.Logf("storm of 300 reads 22 s after consent: %d provider refresh(es) during it, %d by a worker before it; %d distinct token(s); took %s",
		stormRefreshes, byWorker, len(got), took.Round(time.Millisecond))

	// Steady load: 50 reads a second for two minutes.
	const rate, duration = 50, 2 * time.Minute
	before = p.refreshes.Load()
	start := time.Now()
	var (
		mu      sync.Mutex
		served  = map[string]int{}
		failed  int
		expired int
		wg      sync.WaitGroup
	)
	tick := time.NewTicker(time.Second / rate)
	for i := 0; time.Since(start) < duration; i++ {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := send(context.Background(), hc, "GET", tokenURL(i), s.agentKey, nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || a.status != http.StatusOK {
				if failed == 0 {
					t.Logf("failed read: %s", describe(a, err))
				}
				failed++
				return
			}
			served[a.str("access_token")]++
			var tok struct {
				ExpiresIn float64 `json:"expires_in"`
			}
			if json.Unmarshal(a.body, &tok) != nil || tok.ExpiresIn < 1 {
				expired++
			}
		}()
	}
	tick.Stop()
	wg.Wait()
	elapsed := time.Since(start)
	refreshes := p.refreshes.Load() - before
	bound := int64(elapsed/shortInterval) + 1
	reads := failed
	for _, n := range served {
		reads += n
	}
	t.Logf("steady %d reads/s for %s: %d reads, %d provider refreshes (bound %d: one per %s plus one), %d distinct tokens served, %d failed, %d expired",
		rate, elapsed.Round(time.Millisecond), reads, refreshes, bound, shortInterval.Round(time.Millisecond), len(served), failed, expired)
	if refreshes > bound || failed != 0 || expired != 0 {
		t.Errorf("steady load: %d refreshes (at most %d), %d failed reads, %d expired tokens served", refreshes, bound, failed, expired)
	}
	if twice, reused := p.refreshedTwice(), p.reused.Load(); twice != 0 || reused != 0 {
		t.Errorf("%d refresh tokens presented twice, %d refreshes with a consumed refresh token", twice, reused)
	}
	for _, b := range brokers {
		t.Logf("%s: token_refresh_total{result=\"success\"} %v", b.name, metric(t, b, `token_refresh_total{result="success"}`))
	}
	if st := status(t, brokers[2], id); st["status"] != "active" {
		t.Errorf("connection after the run: %v", st["status"])
	}
	assertNoLeak(t, p.secrets(), append(brokers, gws...)...)
}

// redactCounts names the tokens of a count by their sequence number only
// (the provider's prefix is what the leak check searches logs for).
func redactCounts(m map[string]int, prefix string) string {
	var parts []string
	for k, v := range m {
		name := strings.TrimPrefix(k, prefix+"-")
		if k == "" {
			name = "failed"
		}
		parts = append(parts, fmt.Sprintf("%s:%d", name, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
