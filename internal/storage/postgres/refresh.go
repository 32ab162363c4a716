package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// dueForRefresh is a UNION of the two reasons a connection is due rather
// than one OR across the join, so that each arm range-scans its own index
// (tokens_expires_at, connections_active_last_touched) instead of both
// tables. The status is a literal because the partial index's predicate has
// to match it.
const dueForRefresh = `SELECT id FROM (
    SELECT c.id, t.expires_at
    FROM tokens t JOIN connections c ON c.id = t.connection_id
    WHERE t.expires_at < $2 AND c.status = 'active'
        AND (c.refresh_lease_until IS NULL OR c.refresh_lease_until <= $1)
        AND (c.next_refresh_at IS NULL OR c.next_refresh_at <= $1)
    UNION
    SELECT c.id, t.expires_at
    FROM connections c JOIN tokens t ON t.connection_id = c.id
    WHERE COALESCE(c.last_refresh_at, c.created_at) < $3 AND c.status = 'active'
        AND (c.refresh_lease_until IS NULL OR c.refresh_lease_until <= $1)
        AND (c.next_refresh_at IS NULL OR c.next_refresh_at <= $1)
) due
ORDER BY expires_at ASC NULLS LAST, id
LIMIT $4`

// DueForRefresh returns the ids of active connections that have a token
// and either that token expires before expiringBefore or the connection was
// last refreshed (or created) before untouchedBefore, whose lease is free at
// now and whose retry time has come. A zero bound matches nothing on its
// side.
func (s *Store) DueForRefresh(ctx context.Context, now, expiringBefore, untouchedBefore time.Time, n int) ([]string, error) {
	rows, err := s.pool.Query(ctx, dueForRefresh,
		nullTime(now), nullTime(expiringBefore), nullTime(untouchedBefore), limit(n))
	if err != nil {
		return nil, wrap("due for refresh", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, wrap("due for refresh", err)
	}
	return ids, nil
}
