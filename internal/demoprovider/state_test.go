package demoprovider

import (
	"net/http"
	"testing"
	"time"
)

func (p *Provider) stateSizes() (pending, codes, families, refresh, revoked int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.st.pending), len(p.st.codes), len(p.st.families), len(p.st.refresh), len(p.st.revokedJTIs)
}

func TestExpiredStateIsPruned(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RefreshTokenTTL = time.Hour })
	call := e.mustTokens(t, "openid offline_access", "demo")
	e.refresh(t, call.str("refresh_token"))
	e.revoke(t, call.str("access_token"))
	e.openConsent(t, e.authParams("openid")) // left unanswered

	pending, codes, families, refresh, revoked := e.p.stateSizes()
	if pending != 1 || codes != 1 || families != 1 || refresh != 2 || revoked != 1 {
		t.Fatalf("before: pending %d codes %d families %d refresh %d revoked %d",
			pending, codes, families, refresh, revoked)
	}

	e.clock.Advance(time.Hour + pruneInterval)
	e.openConsent(t, e.authParams("openid")) // any request sweeps

	pending, codes, families, refresh, revoked = e.p.stateSizes()
	if pending != 1 || codes != 0 || families != 0 || refresh != 0 || revoked != 0 {
		t.Errorf("after: pending %d (only the new one) codes %d families %d refresh %d revoked %d",
			pending, codes, families, refresh, revoked)
	}
	if r := e.refresh(t, call.str("refresh_token")); r.status != http.StatusBadRequest {
		t.Errorf("pruned refresh token: %d", r.status)
	}
}

// TestConcurrentRedemption races several redemptions of one code and of one
// refresh token: exactly one of each may win.
func TestConcurrentRedemption(t *testing.T) {
	const n = 8
	race := func(do func() tokenCall) (ok int) {
		results := make(chan tokenCall, n)
		for range n {
			go func() { results <- do() }()
		}
		for range n {
			if r := <-results; r.status == http.StatusOK {
				ok++
			} else if r.str("error") != "invalid_grant" {
				t.Errorf("loser got %d %v", r.status, r.body)
			}
		}
		return ok
	}

	e := newEnv(t, nil)
	code := e.login(t, "openid offline_access", "demo")
	if won := race(func() tokenCall { return e.exchange(t, code, testVerifier) }); won != 1 {
		t.Fatalf("%d concurrent code redemptions succeeded", won)
	}

	rt := e.mustTokens(t, "openid offline_access", "demo").str("refresh_token")
	if won := race(func() tokenCall { return e.refresh(t, rt) }); won != 1 {
		t.Fatalf("%d concurrent refreshes succeeded", won)
	}
	// Every replayed code is counted; after the first replayed refresh
	// token the family is dead and the rest are simply invalid.
	if s := e.p.Stats(); s.CodeReuses != n-1 || s.RefreshReuses != 1 {
		t.Errorf("stats = %+v", s)
	}
}
