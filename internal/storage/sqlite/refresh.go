package sqlite

import (
	"context"
	"math"
	"time"
)

// dueForRefresh is a UNION of the two reasons a connection is due rather
// than one OR across the join, so that each arm range-scans its own index
// instead of both tables. The status is a literal because the partial
// index's predicate has to match it. INDEXED BY because, without ANALYZE
// statistics (which nothing runs), SQLite prefers the barely selective
// status index; it also makes the query fail to prepare, and the tests with
// it, should the indexes and the query ever drift apart.
const dueForRefresh = `SELECT id FROM (
    SELECT c.id, t.expires_at
    FROM tokens t INDEXED BY tokens_expires_at JOIN connections c ON c.id = t.connection_id
    WHERE t.expires_at < ?2 AND c.status = 'active'
        AND (c.refresh_lease_until IS NULL OR c.refresh_lease_until <= ?1)
        AND (c.next_refresh_at IS NULL OR c.next_refresh_at <= ?1)
    UNION
    SELECT c.id, t.expires_at
    FROM connections c INDEXED BY connections_active_last_touched JOIN tokens t ON t.connection_id = c.id
    WHERE COALESCE(c.last_refresh_at, c.created_at) < ?3 AND c.status = 'active'
        AND (c.refresh_lease_until IS NULL OR c.refresh_lease_until <= ?1)
        AND (c.next_refresh_at IS NULL OR c.next_refresh_at <= ?1)
)
ORDER BY expires_at ASC NULLS LAST, id
LIMIT ?4`

// DueForRefresh returns the ids of active connections that have a token
// and either that token expires before expiringBefore or the connection was
// last refreshed (or created) before untouchedBefore, whose lease is free at
// now and whose retry time has come. A zero bound matches nothing on its
// side.
func (s *Store) DueForRefresh(ctx context.Context, now, expiringBefore, untouchedBefore time.Time, n int) ([]string, error) {
	const op = "due for refresh"
	rows, err := s.read.QueryContext(ctx, dueForRefresh,
		boundNanos(now), boundNanos(expiringBefore), boundNanos(untouchedBefore), limit(n))
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, wrap(op, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return ids, nil
}

// boundNanos is nanos for a query bound. A bound outside the storable range
// is clamped rather than refused, as PostgreSQL would accept it: every stored
// time lies inside the range, so only a time stored at its very edge could
// compare differently.
func boundNanos(t time.Time) any {
	switch {
	case t.IsZero():
		return nil
	case t.Before(minTime):
		return int64(math.MinInt64)
	case t.After(maxTime):
		return int64(math.MaxInt64)
	}
	return t.UnixNano()
}
