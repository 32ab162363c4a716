package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dromos-dev/dromos/internal/storage"
)

// dueRows is a UNION of the two reasons a connection is due rather than one
// OR across the join, so that each arm range-scans its own index: refresh
// ahead walks connections_active_last_used (the connections in use, however
// large the table), keep-alive walks connections_active_provider_touched
// once per listed provider. The status is a literal because the partial
// indexes' predicate has to match it. The keep-alive arm is a LATERAL
// subquery in the index's order with the pass's limit: its bound comes from
// the unnested array, so the planner cannot estimate the range and, joined
// plainly, guessed a third of the table and hashed all of tokens (a
// sequential scan per pass, seen at 200,000 rows); ordered and limited, it
// walks the index and stops.
const dueRows = `SELECT id, expires_at FROM (
    SELECT c.id, t.expires_at
    FROM connections c JOIN tokens t ON t.connection_id = c.id
    WHERE COALESCE(c.last_read_at, c.created_at) >= $3 AND c.status = 'active'
        AND t.expires_at < $2
        AND (c.refresh_lease_until IS NULL OR c.refresh_lease_until <= $1)
        AND (c.next_refresh_at IS NULL OR c.next_refresh_at <= $1)
        AND (c.refresh_claim_until IS NULL OR c.refresh_claim_until <= $1)
    UNION
    SELECT ka.id, ka.expires_at
    FROM unnest($4::text[], $5::timestamptz[]) AS k(provider_id, untouched_before)
    CROSS JOIN LATERAL (
        SELECT c.id, t.expires_at
        FROM connections c JOIN tokens t ON t.connection_id = c.id
        WHERE c.provider_id = k.provider_id
            AND COALESCE(c.last_refresh_at, c.created_at) < k.untouched_before AND c.status = 'active'
            AND (c.refresh_lease_until IS NULL OR c.refresh_lease_until <= $1)
            AND (c.next_refresh_at IS NULL OR c.next_refresh_at <= $1)
            AND (c.refresh_claim_until IS NULL OR c.refresh_claim_until <= $1)
        ORDER BY COALESCE(c.last_refresh_at, c.created_at)
        LIMIT $6
    ) ka
) due
ORDER BY expires_at ASC NULLS LAST, id
LIMIT $6`

const dueForRefresh = `SELECT id FROM (` + dueRows + `) due ORDER BY expires_at ASC NULLS LAST, id`

// claimDue claims what dueRows finds: rows another pass holds locked are
// skipped rather than waited for (SKIP LOCKED), and a row another pass
// claimed and committed meanwhile is re-checked against the claim after
// the lock and left out, so concurrent passes of many replicas split the
// work. The ids go through arrays (id = ANY) so that both steps are primary
// key lookups, whatever the planner guesses of the CTE's size.
const claimDue = `WITH due AS (` + dueRows + `),
locked AS (
    SELECT c.id FROM connections c
    WHERE c.id = ANY(ARRAY(SELECT id FROM due)) AND c.status = 'active'
        AND (c.refresh_claim_until IS NULL OR c.refresh_claim_until <= $1)
    FOR NO KEY UPDATE SKIP LOCKED
),
claimed AS (
    UPDATE connections c SET refresh_claim_until = $7
    WHERE c.id = ANY(ARRAY(SELECT id FROM locked))
    RETURNING c.id
)
SELECT claimed.id FROM claimed JOIN due ON due.id = claimed.id
ORDER BY due.expires_at ASC NULLS LAST, claimed.id`

// DueForRefresh returns the ids of active connections with a token that
// are due by f, whose lease is free at f.Now, whose retry time has come and
// that no pass holds claimed; with f.ClaimUntil, it claims them.
func (s *Store) DueForRefresh(ctx context.Context, f storage.DueFilter) ([]string, error) {
	provs, befores := keepAliveArgs(f.KeepAlive)
	args := []any{nullTime(f.Now), nullTime(f.ExpiringBefore), readSince(f.ReadSince), provs, befores, limit(f.Limit)}
	q := dueForRefresh
	if !f.ClaimUntil.IsZero() {
		q, args = claimDue, append(args, f.ClaimUntil)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, wrap("due for refresh", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, wrap("due for refresh", err)
	}
	return ids, nil
}

const releaseClaims = `UPDATE connections SET refresh_claim_until = NULL
WHERE id = ANY($1::text[]) AND refresh_claim_until IS NOT NULL`

// ReleaseClaims ends the claims on ids.
func (s *Store) ReleaseClaims(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, releaseClaims, ids)
	return wrap("release claims", err)
}

// readSince is the lower bound on the last read time: a zero one takes
// every connection, -infinity being before any stored time.
func readSince(t time.Time) any {
	if t.IsZero() {
		return "-infinity"
	}
	return t
}

// keepAliveArgs splits the keep-alive list into the two arrays the query
// unnests; an entry with a zero bound asks for nothing and is left out.
func keepAliveArgs(ks []storage.KeepAlive) ([]string, []time.Time) {
	var provs []string
	var befores []time.Time
	for _, k := range ks {
		if k.UntouchedBefore.IsZero() {
			continue
		}
		provs, befores = append(provs, k.ProviderID), append(befores, k.UntouchedBefore)
	}
	return provs, befores
}

// recordReads moves last_read_at forward. Rows are taken in id order and
// those another transaction holds (a refresh's update) are skipped: the mark
// is advisory, and waiting on a refresh, or two brokers locking the same
// rows in different orders, is worse than a mark a minute late.
const recordReads = `UPDATE connections c SET last_read_at = r.at
FROM (
    SELECT c2.id, r.at
    FROM unnest($1::text[], $2::timestamptz[]) AS r(id, at)
    JOIN connections c2 ON c2.id = r.id
    WHERE c2.last_read_at IS NULL OR c2.last_read_at < r.at
    ORDER BY c2.id
    FOR NO KEY UPDATE OF c2 SKIP LOCKED
) r
WHERE c.id = r.id`

// RecordReads moves each connection's last read time forward.
func (s *Store) RecordReads(ctx context.Context, reads []storage.Read) error {
	if len(reads) == 0 {
		return nil
	}
	sorted := slices.SortedFunc(slices.Values(reads), func(a, b storage.Read) int {
		return strings.Compare(a.ConnectionID, b.ConnectionID)
	})
	ids, ats := make([]string, 0, len(sorted)), make([]time.Time, 0, len(sorted))
	for i, r := range sorted {
		if i > 0 && r.ConnectionID == ids[len(ids)-1] {
			// One row per id: keep the latest read.
			if r.At.After(ats[len(ats)-1]) {
				ats[len(ats)-1] = r.At
			}
			continue
		}
		ids, ats = append(ids, r.ConnectionID), append(ats, r.At)
	}
	_, err := s.pool.Exec(ctx, recordReads, ids, ats)
	return wrap("record reads", err)
}

// takeProviderCall counts a call when the window has room; a row of an
// earlier window starts again at one. The WHERE is re-checked under the
// row lock, so concurrent callers never count past the limit.
const takeProviderCall = `UPDATE provider_budgets SET
    calls = CASE WHEN window_start < $2 THEN 1 ELSE calls + 1 END,
    window_start = GREATEST(window_start, $2)
WHERE provider_id = $1
    AND (CASE WHEN window_start < $2 THEN 0 ELSE calls END) <
        (CASE WHEN throttled_until > $3 THEN $5::int ELSE $4::int END)
RETURNING calls, CASE WHEN throttled_until > $3 THEN $5::int ELSE $4::int END`

// TakeProviderCall counts one call to the provider if its window has room.
func (s *Store) TakeProviderCall(ctx context.Context, c storage.ProviderCall) (bool, int, error) {
	if _, err := s.pool.Exec(ctx, `INSERT INTO provider_budgets (provider_id, window_start) VALUES ($1, $2)
        ON CONFLICT (provider_id) DO NOTHING`, c.ProviderID, c.WindowStart); err != nil {
		return false, 0, wrap("take provider call", err)
	}
	var calls, limit int
	err := s.pool.QueryRow(ctx, takeProviderCall, c.ProviderID, c.WindowStart, c.Now, c.Limit, c.ThrottledLimit).Scan(&calls, &limit)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, wrap("take provider call", err)
	}
	return true, max(limit-calls, 0), nil
}

// ThrottleProvider keeps the provider throttled until until.
func (s *Store) ThrottleProvider(ctx context.Context, providerID string, until time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO provider_budgets (provider_id, window_start, throttled_until) VALUES ($1, $2, $2)
        ON CONFLICT (provider_id) DO UPDATE SET throttled_until = GREATEST(provider_budgets.throttled_until, EXCLUDED.throttled_until)`,
		providerID, until)
	return wrap("throttle provider", err)
}
