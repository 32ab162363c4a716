package broker_test

import (
	"net/url"
	"slices"
	"testing"
)

// TestListConnectionsPagesAndFilters pages through one client's
// connections with filters and checks that another client's never appear.
func TestListConnectionsPagesAndFilters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, f := setupFake(t, dbURL)
		h.registerProvider(f.profile("other"))
		start := func(client, user, prov string) string {
			t.Helper()
			var c consentResp
			if st := h.do("POST", "/auth/consent-spec", map[string]any{"workspace_id": "w", "client_name": client,
				"user_id": user, "provider_name": prov, "return_url": returnURL}, &c); st != 200 {
				t.Fatalf("consent: %d", st)
			}
			return c.ConnectionID
		}
		var mine, minefake []string
		for i := range 7 {
			prov := "fake"
			if i%3 == 2 {
				prov = "other"
			}
			id := start("agent-a", "u1", prov)
			mine = append(mine, id)
			if prov == "fake" {
				minefake = append(minefake, id)
			}
			start("agent-b", "u1", "fake")
		}
		start("agent-a", "u2", "fake")
		// The harness clock stands still: every connection has the same
		// created_at, so the listing order (created_at, id) is the id's,
		// and the cursor must place rows by id alone.
		slices.Sort(mine)
		slices.Sort(minefake)

		type page struct {
			Connections []struct {
				ConnectionID string `json:"connection_id"`
				ClientName   string `json:"client_name"`
				UserID       string `json:"user_id"`
				Provider     string `json:"provider"`
			} `json:"connections"`
			NextCursor string `json:"next_cursor"`
		}
		all := func(q url.Values) []string {
			t.Helper()
			var ids []string
			for range 20 {
				var p page
				if st := h.do("GET", "/connections?"+q.Encode(), nil, &p); st != 200 {
					t.Fatalf("list %s: %d", q.Encode(), st)
				}
				for _, c := range p.Connections {
					if c.ClientName != q.Get("client_name") || c.UserID != q.Get("user_id") {
						t.Fatalf("list %s returned %+v", q.Encode(), c)
					}
					ids = append(ids, c.ConnectionID)
				}
				if p.NextCursor == "" {
					return ids
				}
				q.Set("cursor", p.NextCursor)
			}
			t.Fatal("paging did not end")
			return nil
		}
		got := all(url.Values{"client_name": {"agent-a"}, "user_id": {"u1"}, "limit": {"3"}})
		if !slices.Equal(got, mine) {
			t.Fatalf("paged list = %q, want %q", got, mine)
		}
		got = all(url.Values{"client_name": {"agent-a"}, "user_id": {"u1"}, "provider_name": {"fake"}, "limit": {"2"}})
		if !slices.Equal(got, minefake) {
			t.Fatalf("provider_name fake = %q, want %q", got, minefake)
		}
		got = all(url.Values{"client_name": {"agent-a"}, "user_id": {"u1"}, "status": {"active", "failed"}})
		if len(got) != 0 {
			t.Fatalf("active or failed = %q, want none", got)
		}
		got = all(url.Values{"client_name": {"agent-a"}, "user_id": {"u1"}, "status": {"pending"}, "limit": {"7"}})
		if !slices.Equal(got, mine) {
			t.Fatalf("pending = %q, want %q", got, mine)
		}

		for name, q := range map[string]string{
			"unknown status": "status=done",
			"limit zero":     "limit=0",
			"limit too big":  "limit=1001",
			"bad cursor":     "cursor=bm90LWEtY3Vyc29y",
		} {
			var env envelope
			if st := h.do("GET", "/connections?client_name=agent-a&"+q, nil, &env); st != 400 || env.Code != "bad_request" {
				t.Errorf("%s: %d %+v, want 400 bad_request", name, st, env)
			}
		}
	})
}
