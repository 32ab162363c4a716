package postgres

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/storage/storagetest"
)

// explainRows is how many connections TestBackgroundQueriesUseIndexes
// seeds: enough that the planner prefers a sequential scan wherever an
// index does not serve a query (at 50,000 it still walked the keep-alive
// arm through indexes, at 200,000 — the scale benchmark's size — it hashed
// the whole table), small enough to seed in seconds.
const explainRows = 200_000

// TestBackgroundQueriesUseIndexes seeds a table the way a large deployment
// looks (1 % of the connections read in the last minutes, the rest idle
// for days with long-expired tokens, ten providers) and checks that the
// plans of the worker's queries and of the read marks reach connections
// and tokens through indexes only: no sequential scan, whose cost would
// grow with the table rather than with the connections in use.
func TestBackgroundQueriesUseIndexes(t *testing.T) {
	s, err := Open(t.Context(), storagetest.PostgresURL(t), Options{Migrate: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	ctx := t.Context()
	// Tokens are 700 bytes of ciphertext, about what a sealed token set
	// with a JWT access token takes. Idle connections were last read a day or more ago and refreshed up to
	// 60 days and an hour ago (so a sixty-first of providers p1 and p3 are
	// due for keep-alive); their tokens expired long ago.
	seed := []string{
		`ALTER TABLE connections DISABLE TRIGGER connections_activated`,
		`INSERT INTO connections (id, provider_id, provider_name, status, created_at, updated_at, last_refresh_at, last_read_at)
        SELECT 'c' || lpad(g::text, 7, '0'), 'p' || (g % 10), 'prov' || (g % 10),
            CASE WHEN g % 50 = 0 THEN 'revoked' ELSE 'active' END,
            $1::timestamptz - interval '200 days', $1::timestamptz - (g % 61) * interval '1 day',
            $1::timestamptz - (g % 61) * interval '1 day' - interval '1 hour',
            CASE WHEN g % 100 = 1 THEN $1::timestamptz - (g % 600) * interval '1 second'
                 ELSE $1::timestamptz - (g % 61 + 1) * interval '1 day' END
        FROM generate_series(1, $2::int) g`,
		`INSERT INTO tokens (connection_id, ciphertext, expires_at, created_at, updated_at)
        SELECT 'c' || lpad(g::text, 7, '0'), decode(repeat('5a', 700), 'hex'),
            CASE WHEN g % 100 = 1 THEN $1::timestamptz + (g % 3600) * interval '1 second'
                 ELSE $1::timestamptz - (g % 61) * interval '1 day' END,
            $1::timestamptz - (g % 61) * interval '1 day' - interval '1 hour',
            $1::timestamptz - (g % 61) * interval '1 day' - interval '1 hour'
        FROM generate_series(1, $2::int) g`,
		`ALTER TABLE connections ENABLE TRIGGER connections_activated`,
	}
	start := time.Now()
	for _, q := range seed {
		var args []any
		if strings.Contains(q, "$1") {
			args = []any{now, explainRows}
		}
		if _, err := s.pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	if _, err := s.pool.Exec(ctx, `ANALYZE connections; ANALYZE tokens`); err != nil {
		t.Fatalf("analyze: %v", err)
	}

	t.Logf("seeded %d connections in %v", explainRows, time.Since(start).Round(time.Millisecond))
	f := storage.DueFilter{Now: now, ExpiringBefore: now.Add(2 * time.Minute), ReadSince: now.Add(-time.Hour),
		KeepAlive: []storage.KeepAlive{{ProviderID: "p1", UntouchedBefore: now.Add(-60 * 24 * time.Hour)},
			{ProviderID: "p3", UntouchedBefore: now.Add(-60 * 24 * time.Hour)}}, Limit: 1000}
	provs, befores := keepAliveArgs(f.KeepAlive)
	due := []any{f.Now, f.ExpiringBefore, f.ReadSince, provs, befores, f.Limit}
	ids := []string{"c0000001", "c0000101", "c0050001"}
	for _, tc := range []struct {
		name string
		sql  string
		args []any
	}{
		{"due for refresh", dueForRefresh, due},
		{"claim due", claimDue, append(slices.Clone(due), now.Add(2*time.Minute))},
		{"record reads", recordReads, []any{ids, []time.Time{now, now, now}}},
		{"release claims", releaseClaims, []any{ids}},
		// The confirmation sweep: no connection awaits confirmation in
		// the seed, the common case, which must cost nothing per row.
		{"lapsed confirmations", lapsedConfirmations, []any{now, 100}},
		{"lock lapsed confirmation", lockLapsed, []any{ids[0], now}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var raw []byte
			if err := s.pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+tc.sql, tc.args...).Scan(&raw); err != nil {
				t.Fatalf("explain: %v", err)
			}
			var plans []struct{ Plan planNode }
			if err := json.Unmarshal(raw, &plans); err != nil || len(plans) != 1 {
				t.Fatalf("plan JSON: %v", err)
			}
			if seq := seqScans(plans[0].Plan); len(seq) > 0 {
				t.Fatalf("sequential scan of %q in the plan:\n%s", seq, raw)
			}
		})
	}
	// And the query answers what the seed says: the hot connections whose
	// token expires within the window, plus the idle ones of p1 and p3.
	got, err := s.DueForRefresh(ctx, f)
	if err != nil {
		t.Fatalf("DueForRefresh: %v", err)
	}
	if len(got) == 0 || len(got) >= 1000 {
		t.Fatalf("DueForRefresh returned %d ids, want some and fewer than the limit", len(got))
	}
}

type planNode struct {
	NodeType string     `json:"Node Type"`
	Relation string     `json:"Relation Name"`
	Plans    []planNode `json:"Plans"`
}

// seqScans lists the tables the plan scans sequentially, of connections
// and tokens.
func seqScans(n planNode) []string {
	var out []string
	if n.NodeType == "Seq Scan" && (n.Relation == "connections" || n.Relation == "tokens") {
		out = append(out, n.Relation)
	}
	for _, c := range n.Plans {
		out = append(out, seqScans(c)...)
	}
	return out
}
