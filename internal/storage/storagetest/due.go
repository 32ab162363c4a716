package storagetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

// The refresh windows the DueForRefresh cases are written against.
const (
	expiringWithin = 5 * time.Minute
	untouchedFor   = 24 * time.Hour
)

// dueConnection is an active connection refreshed an hour before now, with
// no lease and no retry planned: due exactly when its token expires within
// expiringWithin.
func dueConnection(id string, now time.Time) storage.Connection {
	c := newConnection(id)
	c.Status = storage.StatusActive
	c.CreatedAt = now.Add(-2 * time.Hour)
	c.LastRefreshAt = now.Add(-time.Hour)
	c.NextRefreshAt = time.Time{}
	c.RefreshLeaseUntil, c.RefreshLeaseOwner = time.Time{}, ""
	return c
}

// wantDue checks DueForRefresh at now, with the standard windows, in order.
func wantDue(t *testing.T, s storage.Storage, what string, now time.Time, want []string) {
	t.Helper()
	got, err := s.DueForRefresh(t.Context(), dueFilter(now, now.Add(expiringWithin), now.Add(-untouchedFor), 0))
	must(t, "DueForRefresh "+what, err)
	if !slices.Equal(got, want) {
		t.Errorf("DueForRefresh %s = %q, want %q", what, got, want)
	}
}

// dueFilter asks for tokens expiring before expiringBefore, however long
// unread, and for keep-alive of newConnection's provider.
func dueFilter(now, expiringBefore, untouchedBefore time.Time, limit int) storage.DueFilter {
	return storage.DueFilter{Now: now, ExpiringBefore: expiringBefore, Limit: limit,
		KeepAlive: []storage.KeepAlive{{ProviderID: "prov-1", UntouchedBefore: untouchedBefore}}}
}

func runDueForRefresh(t *testing.T, open func(t *testing.T) storage.Storage) {
	now := baseTime()
	expiringBefore, untouchedBefore := now.Add(expiringWithin), now.Add(-untouchedFor)
	long := now.Add(-2 * untouchedFor)

	t.Run("Selection", func(t *testing.T) {
		s := open(t)
		// Each case changes the due connection (token expiring in a minute)
		// in one or two ways. tok is nil for no token row.
		cases := []struct {
			name string
			edit func(c *storage.Connection, tok *storage.Token) *storage.Token
			due  bool
		}{
			{"expiring soon", nil, true},
			{"already expired", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				tok.ExpiresAt = now.Add(-time.Hour)
				return tok
			}, true},
			{"expiring exactly at the bound", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				tok.ExpiresAt = expiringBefore
				return tok
			}, false},
			{"far-future expiry", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				tok.ExpiresAt = now.Add(untouchedFor)
				return tok
			}, false},
			{"unknown expiry, refreshed recently", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				tok.ExpiresAt = time.Time{}
				return tok
			}, false},
			{"unknown expiry, untouched for long", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				tok.ExpiresAt, c.LastRefreshAt = time.Time{}, long
				return tok
			}, true},
			{"far expiry, untouched for long", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				tok.ExpiresAt, c.LastRefreshAt = now.Add(untouchedFor), long
				return tok
			}, true},
			{"expired and untouched for long", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				tok.ExpiresAt, c.LastRefreshAt = now.Add(-time.Hour), long
				return tok
			}, true},
			{"untouched exactly to the bound", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				tok.ExpiresAt, c.LastRefreshAt = now.Add(untouchedFor), untouchedBefore
				return tok
			}, false},
			{"never refreshed, created long ago", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				tok.ExpiresAt, c.LastRefreshAt, c.CreatedAt = now.Add(untouchedFor), time.Time{}, long
				return tok
			}, true},
			{"never refreshed, created recently", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				tok.ExpiresAt, c.LastRefreshAt = now.Add(untouchedFor), time.Time{}
				return tok
			}, false},
			{"refreshed recently, created long ago", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				tok.ExpiresAt, c.CreatedAt = now.Add(untouchedFor), long
				return tok
			}, false},
			{"lease held", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				c.RefreshLeaseUntil, c.RefreshLeaseOwner = now.Add(time.Minute), "other-broker"
				return tok
			}, false},
			{"lease held, untouched for long", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				tok.ExpiresAt, c.LastRefreshAt = now.Add(untouchedFor), long
				c.RefreshLeaseUntil, c.RefreshLeaseOwner = now.Add(time.Minute), "other-broker"
				return tok
			}, false},
			{"lease run out", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				c.RefreshLeaseUntil, c.RefreshLeaseOwner = now.Add(-time.Minute), "crashed-broker"
				return tok
			}, true},
			{"lease ends now", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				c.RefreshLeaseUntil, c.RefreshLeaseOwner = now, "finished-broker"
				return tok
			}, true},
			{"lease ends now, untouched for long", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				tok.ExpiresAt, c.LastRefreshAt = now.Add(untouchedFor), long
				c.RefreshLeaseUntil, c.RefreshLeaseOwner = now, "finished-broker"
				return tok
			}, true},
			{"retry planned later", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				c.NextRefreshAt = now.Add(time.Minute)
				return tok
			}, false},
			{"retry planned later, untouched for long", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				tok.ExpiresAt, c.LastRefreshAt, c.NextRefreshAt = now.Add(untouchedFor), long, now.Add(time.Minute)
				return tok
			}, false},
			{"retry time passed", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				c.NextRefreshAt = now.Add(-time.Minute)
				return tok
			}, true},
			{"retry time is now", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				c.NextRefreshAt = now
				return tok
			}, true},
			{"retry time is now, untouched for long", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				tok.ExpiresAt, c.LastRefreshAt, c.NextRefreshAt = now.Add(untouchedFor), long, now
				return tok
			}, true},
			{"status pending", withStatus(storage.StatusPending), false},
			{"status exchanging", withStatus(storage.StatusExchanging), false},
			{"status failed", withStatus(storage.StatusFailed), false},
			{"status expired", withStatus(storage.StatusExpired), false},
			{"status revoked", withStatus(storage.StatusRevoked), false},
			{"status expired, untouched for long", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				c.Status, tok.ExpiresAt, c.LastRefreshAt = storage.StatusExpired, now.Add(untouchedFor), long
				return tok
			}, false},
			{"no token", func(c *storage.Connection, tok *storage.Token) *storage.Token {
				c.LastRefreshAt, c.CreatedAt = time.Time{}, long
				return nil
			}, false},
		}
		ids := make(map[string]string, len(cases)) // case name → connection id
		for i, tc := range cases {
			id := fmt.Sprintf("c%02d", i)
			ids[tc.name] = id
			c := dueConnection(id, now)
			tok := newToken(id, tc.name)
			tok.ExpiresAt = now.Add(time.Minute)
			ptok := &tok
			if tc.edit != nil {
				ptok = tc.edit(&c, ptok)
			}
			createConnection(t, s, c)
			if ptok != nil {
				putToken(t, s, id, *ptok)
			}
		}
		got, err := s.DueForRefresh(t.Context(), dueFilter(now, expiringBefore, untouchedBefore, 1000))
		must(t, "DueForRefresh", err)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				id := ids[tc.name]
				switch n := count(got, id); {
				case n > 1:
					t.Fatalf("%s returned %d times", id, n)
				case (n == 1) != tc.due:
					t.Fatalf("%s returned: %v, want %v (all returned: %q)", id, n == 1, tc.due, got)
				}
			})
		}
	})

	t.Run("OrderAndLimit", func(t *testing.T) {
		s := open(t)
		// Created in this order, so neither creation nor id order is the
		// expected one; d and e expire together and go by id.
		for _, r := range []struct {
			id        string
			expiresAt time.Time
			untouched bool
		}{
			{"f", now.Add(untouchedFor), true},
			{"c", time.Time{}, true},
			{"e", now.Add(time.Minute), false},
			{"a", now.Add(3 * time.Minute), false},
			{"d", now.Add(time.Minute), false},
			{"b", now.Add(-time.Minute), false},
		} {
			c := dueConnection(r.id, now)
			if r.untouched {
				c.LastRefreshAt = long
			}
			createConnection(t, s, c)
			tok := newToken(r.id, "t")
			tok.ExpiresAt = r.expiresAt
			putToken(t, s, r.id, tok)
		}
		all := []string{"b", "d", "e", "a", "f", "c"} // soonest first, unknown expiry last
		for _, tc := range []struct {
			name                        string
			zeroExpiring, zeroUntouched bool // pass a zero time for that bound
			limit                       int
			want                        []string
		}{
			{name: "default limit", want: all},
			{name: "negative limit means default", limit: -1, want: all},
			{name: "limit above count", limit: 100, want: all},
			{name: "limit 3", limit: 3, want: all[:3]},
			{name: "limit 1", limit: 1, want: all[:1]},
			// Nothing is before the zero time: a zero bound disables its reason.
			{name: "zero expiringBefore", zeroExpiring: true, want: []string{"f", "c"}},
			{name: "zero untouchedBefore", zeroUntouched: true, want: []string{"b", "d", "e", "a"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				eb, ub := expiringBefore, untouchedBefore
				if tc.zeroExpiring {
					eb = time.Time{}
				}
				if tc.zeroUntouched {
					ub = time.Time{}
				}
				got, err := s.DueForRefresh(t.Context(), dueFilter(now, eb, ub, tc.limit))
				must(t, "DueForRefresh", err)
				if !slices.Equal(got, tc.want) {
					t.Fatalf("DueForRefresh(limit %d) = %q, want %q", tc.limit, got, tc.want)
				}
			})
		}
	})

	t.Run("DefaultLimitIs100", func(t *testing.T) {
		s := open(t)
		for i := range 101 {
			id := fmt.Sprintf("c%03d", i)
			createConnection(t, s, dueConnection(id, now))
			tok := newToken(id, "t")
			tok.ExpiresAt = now.Add(time.Minute)
			putToken(t, s, id, tok)
		}
		got, err := s.DueForRefresh(t.Context(), dueFilter(now, expiringBefore, untouchedBefore, 0))
		must(t, "DueForRefresh", err)
		if len(got) != 100 || got[0] != "c000" || got[99] != "c099" {
			t.Fatalf("DueForRefresh without limit returned %d ids (%q … %q), want 100 from c000 to c099", len(got), first(got), last(got))
		}
	})
}

func runDueInUse(t *testing.T, open func(t *testing.T) storage.Storage) {
	now := baseTime()
	long := now.Add(-2 * untouchedFor)
	s := open(t)
	// Every token expires within the window; what differs is when the
	// connection was last read or created, and its provider.
	for _, r := range []struct {
		id, provider      string
		created, lastRead time.Time
		lastRefresh       time.Time
	}{
		{id: "read-recently", provider: "prov-1", created: long, lastRead: now.Add(-10 * time.Minute)},
		{id: "read-long-ago", provider: "prov-1", created: long, lastRead: now.Add(-3 * time.Hour)},
		{id: "never-read-new", provider: "prov-1", created: now.Add(-10 * time.Minute)},
		{id: "never-read-old", provider: "prov-1", created: long},
		{id: "idle-other-provider", provider: "prov-2", created: long, lastRefresh: long},
		{id: "idle-listed-provider", provider: "prov-3", created: long, lastRefresh: long},
	} {
		c := dueConnection(r.id, now)
		c.ProviderID, c.CreatedAt, c.LastRefreshAt = r.provider, r.created, r.lastRefresh
		if r.lastRefresh.IsZero() {
			c.LastRefreshAt = now.Add(-time.Hour)
		}
		createConnection(t, s, c)
		tok := newToken(r.id, "t")
		tok.ExpiresAt = now.Add(time.Minute)
		putToken(t, s, r.id, tok)
		if !r.lastRead.IsZero() {
			must(t, "RecordReads", s.RecordReads(t.Context(), []storage.Read{{ConnectionID: r.id, At: r.lastRead}}))
		}
	}
	// An older mark never moves the read time back; unknown ids are
	// ignored, and the same id twice keeps its latest.
	must(t, "RecordReads", s.RecordReads(t.Context(), []storage.Read{
		{ConnectionID: "read-recently", At: now.Add(-5 * time.Hour)},
		{ConnectionID: "no-such-connection", At: now},
		{ConnectionID: "read-long-ago", At: now.Add(-4 * time.Hour)},
		{ConnectionID: "read-long-ago", At: now.Add(-3*time.Hour + time.Second)},
	}))
	must(t, "RecordReads of nothing", s.RecordReads(t.Context(), nil))

	for _, tc := range []struct {
		name string
		f    storage.DueFilter
		want []string
	}{
		{"read within the hour", storage.DueFilter{Now: now, ExpiringBefore: now.Add(expiringWithin), ReadSince: now.Add(-time.Hour)},
			[]string{"never-read-new", "read-recently"}},
		{"read within four hours", storage.DueFilter{Now: now, ExpiringBefore: now.Add(expiringWithin), ReadSince: now.Add(-4 * time.Hour)},
			[]string{"never-read-new", "read-long-ago", "read-recently"}},
		{"mark moved forward by a second", storage.DueFilter{Now: now, ExpiringBefore: now.Add(expiringWithin), ReadSince: now.Add(-3 * time.Hour)},
			[]string{"never-read-new", "read-long-ago", "read-recently"}},
		{"keep-alive of one provider only", storage.DueFilter{Now: now,
			KeepAlive: []storage.KeepAlive{{ProviderID: "prov-3", UntouchedBefore: now.Add(-untouchedFor)}, {ProviderID: "prov-2"}}},
			[]string{"idle-listed-provider"}},
		{"both reasons", storage.DueFilter{Now: now, ExpiringBefore: now.Add(expiringWithin), ReadSince: now.Add(-time.Hour),
			KeepAlive: []storage.KeepAlive{{ProviderID: "prov-3", UntouchedBefore: now.Add(-untouchedFor)}}},
			[]string{"idle-listed-provider", "never-read-new", "read-recently"}},
		{"nothing asked", storage.DueFilter{Now: now}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.DueForRefresh(t.Context(), tc.f)
			must(t, "DueForRefresh", err)
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("DueForRefresh = %q, want %q", got, tc.want)
			}
		})
	}
}

func withStatus(status storage.ConnectionStatus) func(*storage.Connection, *storage.Token) *storage.Token {
	return func(c *storage.Connection, tok *storage.Token) *storage.Token {
		c.Status = status
		return tok
	}
}

func count(ids []string, id string) int {
	n := 0
	for _, x := range ids {
		if x == id {
			n++
		}
	}
	return n
}

func first(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

func last(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return ids[len(ids)-1]
}

// runDueClaims: passes that claim split the due connections between them,
// however many run at once, and a claim holds until its time.
func runDueClaims(t *testing.T, open func(t *testing.T) storage.Storage) {
	now := baseTime()
	s := open(t)
	const n = 40
	var all []string
	for i := range n {
		id := fmt.Sprintf("c%02d", i)
		all = append(all, id)
		createConnection(t, s, dueConnection(id, now))
		tok := newToken(id, "t")
		tok.ExpiresAt = now.Add(time.Minute)
		putToken(t, s, id, tok)
	}
	before, err := s.GetConnection(t.Context(), all[0])
	must(t, "GetConnection", err)
	f := dueFilter(now, now.Add(expiringWithin), now.Add(-untouchedFor), n)
	f.ClaimUntil = now.Add(time.Minute)

	const passes = 6
	results := make([][]string, passes)
	errs := make([]error, passes)
	var wg sync.WaitGroup
	for i := range passes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.DueForRefresh(t.Context(), f)
		}()
	}
	wg.Wait()
	var got []string
	for i := range passes {
		must(t, "claiming DueForRefresh", errs[i])
		if !slices.IsSortedFunc(results[i], strings.Compare) {
			t.Errorf("pass %d: %q not in expiry-then-id order", i, results[i])
		}
		got = append(got, results[i]...)
	}
	slices.Sort(got)
	if !slices.Equal(got, all) {
		t.Fatalf("concurrent claims returned %d ids in all (%q), want each of the %d exactly once", len(got), got, n)
	}

	// Claimed: no pass sees them before the claim's time, claiming or not.
	for _, at := range []time.Time{now, f.ClaimUntil.Add(-time.Millisecond)} {
		g := f
		g.Now = at
		if ids, err := s.DueForRefresh(t.Context(), g); err != nil || len(ids) != 0 {
			t.Fatalf("claim at %v: %q, %v; want none while claimed", at.Sub(now), ids, err)
		}
		g.ClaimUntil = time.Time{}
		if ids, err := s.DueForRefresh(t.Context(), g); err != nil || len(ids) != 0 {
			t.Fatalf("look at %v: %q, %v; want none while claimed", at.Sub(now), ids, err)
		}
	}
	// From the claim's time on they are due again, and a plain look does
	// not claim.
	g := f
	g.Now, g.ClaimUntil = f.ClaimUntil, time.Time{}
	for range 2 {
		if ids, err := s.DueForRefresh(t.Context(), g); err != nil || len(ids) != n {
			t.Fatalf("after the claim: %d ids, %v; want %d", len(ids), err, n)
		}
	}
	// Released: due again at once.
	g = f
	g.Now, g.ClaimUntil = f.ClaimUntil, f.ClaimUntil.Add(time.Minute)
	if ids, err := s.DueForRefresh(t.Context(), g); err != nil || len(ids) != n {
		t.Fatalf("claim again after the first claim ran out: %d ids, %v; want %d", len(ids), err, n)
	}
	must(t, "ReleaseClaims", s.ReleaseClaims(t.Context(), append(all[:3:3], "no-such-connection")))
	must(t, "ReleaseClaims of nothing", s.ReleaseClaims(t.Context(), nil))
	g.ClaimUntil = time.Time{}
	if ids, err := s.DueForRefresh(t.Context(), g); err != nil || !slices.Equal(ids, all[:3]) {
		t.Fatalf("after releasing three: %q, %v; want %q", ids, err, all[:3])
	}
	// A claim leaves the connection itself alone: no version, no update
	// time, no planned refresh changed.
	c, err := s.GetConnection(t.Context(), all[0])
	must(t, "GetConnection", err)
	if c.Version != before.Version || !c.NextRefreshAt.Equal(before.NextRefreshAt) || !c.UpdatedAt.Equal(before.UpdatedAt) {
		t.Fatalf("claimed connection changed: version %d, next refresh %v, updated %v", c.Version, c.NextRefreshAt, c.UpdatedAt)
	}
}

// runProviderBudget: the per-provider call budget holds under concurrent
// callers, starts again with each window, and a throttle lowers it.
func runProviderBudget(t *testing.T, open func(t *testing.T) storage.Storage) {
	s := open(t)
	now := baseTime()
	w0 := now.Truncate(time.Minute)
	call := storage.ProviderCall{ProviderID: "prov-1", Now: now, WindowStart: w0, Limit: 10, ThrottledLimit: 2}

	var wg sync.WaitGroup
	var mu sync.Mutex
	taken, lefts := 0, map[int]bool{}
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, left, err := s.TakeProviderCall(t.Context(), call)
			if err != nil {
				t.Errorf("TakeProviderCall: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				taken++
				lefts[left] = true
			}
		}()
	}
	wg.Wait()
	if taken != 10 || len(lefts) != 10 || !lefts[0] || !lefts[9] {
		t.Fatalf("30 concurrent calls against a limit of 10: %d taken, lefts %v; want 10 taken, lefts 9 … 0", taken, lefts)
	}
	// Another provider has its own budget.
	other := call
	other.ProviderID = "prov-2"
	if ok, left, err := s.TakeProviderCall(t.Context(), other); err != nil || !ok || left != 9 {
		t.Fatalf("other provider: %v %d %v", ok, left, err)
	}
	// The next window starts again.
	next := call
	next.Now, next.WindowStart = now.Add(time.Minute), w0.Add(time.Minute)
	if ok, left, err := s.TakeProviderCall(t.Context(), next); err != nil || !ok || left != 9 {
		t.Fatalf("next window: %v %d %v; want taken, 9 left", ok, left, err)
	}
	// A throttle lowers the limit until it ends; a shorter one later does
	// not shorten it.
	must(t, "ThrottleProvider", s.ThrottleProvider(t.Context(), "prov-1", next.Now.Add(2*time.Minute)))
	must(t, "ThrottleProvider", s.ThrottleProvider(t.Context(), "prov-1", next.Now.Add(time.Minute)))
	for i, want := range []bool{true, false} {
		ok, _, err := s.TakeProviderCall(t.Context(), next)
		if err != nil || ok != want {
			t.Fatalf("throttled call %d: %v, %v; want %v (2 allowed, 2 counted)", i, ok, err, want)
		}
	}
	background := next
	background.ThrottledLimit = 0
	later := background
	later.Now, later.WindowStart = next.Now.Add(90*time.Second), next.WindowStart.Add(time.Minute)
	if ok, _, err := s.TakeProviderCall(t.Context(), later); err != nil || ok {
		t.Fatalf("background call while throttled: %v, %v; want refused", ok, err)
	}
	after := background
	after.Now, after.WindowStart = next.Now.Add(2*time.Minute), next.WindowStart.Add(2*time.Minute)
	if ok, _, err := s.TakeProviderCall(t.Context(), after); err != nil || !ok {
		t.Fatalf("background call once the throttle ended: %v, %v; want taken", ok, err)
	}
	// A throttle of a provider never counted creates its budget.
	must(t, "ThrottleProvider", s.ThrottleProvider(t.Context(), "prov-3", now.Add(5*time.Minute)))
	third := background
	third.ProviderID = "prov-3"
	if ok, _, err := s.TakeProviderCall(t.Context(), third); err != nil || ok {
		t.Fatalf("call to a newly throttled provider: %v, %v; want refused", ok, err)
	}
}
