package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// stormAttempts bounds how often a storm is set up again because the
// broker's background worker refreshed the token before the readers came.
const stormAttempts = 3

// Storm is the refresh storm on one backend: Size readers ask at once for
// the token of a connection whose access token has expired.
type Storm struct {
	Backend string
	Size    int
	// ProviderRefreshes is how many refresh grants the provider saw for the
	// storm's connection; exactly 1 is correct.
	ProviderRefreshes int
	// Errors counts answers other than 200; Stale counts 200 answers that
	// carried the expired token instead of the refreshed one.
	Errors, Stale int
	P50, P99      time.Duration
	// BaselineP99 is the p99 of the same burst of reads of a connection
	// whose token is valid: the cost of the refresh is the difference.
	BaselineP99 time.Duration
	// Preempted counts set-ups abandoned because the background worker
	// refreshed first.
	Preempted  int
	FirstError string
}

// storm runs the refresh storm against s. The client first opens size
// keep-alive connections and measures the baseline burst, so that the
// storm's latencies hold the refresh and not TCP handshakes.
func (s *stack) storm(ctx context.Context, p *fakeProvider, size int, now func() time.Time) (Storm, error) {
	st := Storm{Backend: s.backend, Size: size}
	client := newClient(size)
	defer client.CloseIdleConnections()
	auth := "Bearer " + s.keys.agentKey
	reads := func(id string) requestFunc {
		u := s.tokenURL(id)
		return func(ctx context.Context, _, _ int) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err == nil {
				req.Header.Set("Authorization", auth)
			}
			return req, err
		}
	}
	burst(ctx, client, size, reads(s.conns[0]), now) // dials
	base, status, _ := burst(ctx, client, size, reads(s.conns[0]), now)
	if bad := countNot200(status); bad > 0 {
		return st, fmt.Errorf("storm baseline: %d of %d reads failed", bad, size)
	}
	slices.Sort(base)
	st.BaselineP99 = percentile(base, 99)

	for attempt := 1; attempt <= stormAttempts; attempt++ {
		code := stormCodePrefix + s.backend + "-" + strconv.Itoa(attempt)
		id, err := s.connect(ctx, "storm-user", code)
		if err != nil {
			return st, fmt.Errorf("storm connection: %w", err)
		}
		// A token is due a third of its lifetime before it expires:
		// waiting until it has expired makes every reader find it due.
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(stormLifetime + 100*time.Millisecond):
		}
		if p.refreshesOf(code) > 0 {
			st.Preempted++
			continue
		}
		lat, status, bodies := burst(ctx, client, size, reads(id), now)
		st.ProviderRefreshes = p.refreshesOf(code)
		for i, code := range status {
			if code != http.StatusOK {
				st.Errors++
				if st.FirstError == "" {
					st.FirstError = "HTTP " + strconv.Itoa(code)
					if code == 0 {
						st.FirstError = "transport error"
					}
				}
				continue
			}
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			if json.Unmarshal(bodies[i], &tok) != nil || !strings.HasPrefix(tok.AccessToken, refreshedPrefix) {
				st.Stale++
			}
		}
		slices.Sort(lat)
		st.P50, st.P99 = percentile(lat, 50), percentile(lat, 99)
		return st, nil
	}
	return st, fmt.Errorf("storm: the background worker refreshed the token first %d times", stormAttempts)
}

func countNot200(status []int) int {
	n := 0
	for _, s := range status {
		if s != http.StatusOK {
			n++
		}
	}
	return n
}
