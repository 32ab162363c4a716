package broker_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/broker"
	"github.com/dromos-dev/dromos/internal/rejections"
	"github.com/dromos-dev/dromos/internal/storage"
)

// callbackFrom hits the callback as the client at addr (behind the
// trusted proxy) and returns the status.
func (h *harness) callbackFrom(addr string, q url.Values) int {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.srv.URL+"/auth/callback?"+q.Encode(), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", addr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestRejectedCallbacksAreAudited: forged, tampered and replayed
// callbacks write audit rows, one per reason and client address with a
// count, and a flood from many addresses writes a bounded number of rows.
// The callback counter keeps counting and nothing else changes.
func TestRejectedCallbacksAreAudited(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL, func(c *broker.Config) {
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			c.RejectionAuditWindow = time.Hour // only FlushAudit writes
		})
		f := newFakeProvider(t)
		h.registerProvider(f.profile("fake"))
		c := h.consent("fake", nil, returnURL)
		tampered := []byte(c.State)
		tampered[10] ^= 1
		bad := url.Values{"state": {string(tampered)}, "code": {"x"}}
		repeated := url.Values{"state": {c.State, c.State}, "code": {"x"}}

		for range 3 {
			h.callbackFrom("203.0.113.7", bad)
		}
		h.callbackFrom("198.51.100.9", bad)
		h.callbackFrom("203.0.113.7", repeated)
		// A flood from more addresses than one window keeps apart.
		const flood = 300
		for i := range flood {
			if st := h.callbackFrom(fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), bad); st != http.StatusBadRequest {
				t.Fatalf("forged callback answered %d", st)
			}
		}
		h.broker.FlushAudit()

		events, err := h.store.ListAudit(context.Background(), storage.AuditFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		type row struct {
			reason, ip string
			count      int
		}
		var rows []row
		total := 0
		for _, e := range events {
			if e.Type != rejections.EventType {
				continue
			}
			n, _ := strconv.Atoi(e.Detail["count"])
			rows = append(rows, row{e.Detail["reason"], e.ClientIP, n})
			total += n
			for _, v := range e.Detail {
				if strings.Contains(v, c.State) || strings.Contains(v, string(tampered)) {
					t.Fatalf("audit row holds the state: %v", e.Detail)
				}
			}
		}
		want := map[row]bool{{"invalid_state", "203.0.113.7", 3}: true, {"invalid_state", "198.51.100.9", 1}: true,
			{"repeated_parameter", "203.0.113.7", 1}: true}
		for _, r := range rows {
			delete(want, r)
		}
		if len(want) != 0 {
			t.Fatalf("missing rows %v among %d rows", want, len(rows))
		}
		if total != 5+flood {
			t.Fatalf("rows count %d rejections, want %d", total, 5+flood)
		}
		// 256 pairs a window, then one row per reason for the rest.
		if len(rows) > 256+2 {
			t.Fatalf("%d rows for one window: the flood is not bounded", len(rows))
		}
		resp, err := http.Get(h.srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf(`oauth_callbacks_total{result="rejected_invalid_state"} %d`, 4+flood); !strings.Contains(string(metrics), want) {
			t.Fatalf("metrics lack %s", want)
		}
		if f.calls.Load() != 0 || h.status(c.ConnectionID) != storage.StatusPending {
			t.Fatalf("provider calls %d, status %s after forged callbacks", f.calls.Load(), h.status(c.ConnectionID))
		}
		h.assertNoToken(c.ConnectionID)
	})
}
