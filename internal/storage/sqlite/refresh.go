package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

// dueAhead is the refresh-ahead arm of DueForRefresh: connections read (or
// created) recently whose token expires soon, walked from the index on the
// last use so that it grows with the connections in use, not the table. The
// status is a literal because the partial indexes' predicate has to match
// it. INDEXED BY because, without ANALYZE statistics (which nothing runs),
// SQLite prefers the barely selective status index; it also makes the query
// fail to prepare, and the tests with it, should the indexes and the query
// ever drift apart.
const dueAhead = `SELECT c.id, t.expires_at
    FROM connections c INDEXED BY connections_active_last_used JOIN tokens t ON t.connection_id = c.id
    WHERE COALESCE(c.last_read_at, c.created_at) >= ?3 AND c.status = 'active'
        AND t.expires_at < ?2
        AND (c.refresh_lease_until IS NULL OR c.refresh_lease_until <= ?1)
        AND (c.next_refresh_at IS NULL OR c.next_refresh_at <= ?1)
        AND (c.refresh_claim_until IS NULL OR c.refresh_claim_until <= ?1)`

// dueKeepAlive is the keep-alive arm for one provider (?4 and ?5 are
// renumbered per provider): connections left unrefreshed for long.
const dueKeepAlive = `SELECT c.id, t.expires_at
    FROM connections c INDEXED BY connections_active_provider_touched JOIN tokens t ON t.connection_id = c.id
    WHERE c.provider_id = ?%d AND COALESCE(c.last_refresh_at, c.created_at) < ?%d AND c.status = 'active'
        AND (c.refresh_lease_until IS NULL OR c.refresh_lease_until <= ?1)
        AND (c.next_refresh_at IS NULL OR c.next_refresh_at <= ?1)
        AND (c.refresh_claim_until IS NULL OR c.refresh_claim_until <= ?1)`

// DueForRefresh returns the ids of active connections with a token that
// are due by f, whose lease is free at f.Now, whose retry time has come and
// that no pass holds claimed; with f.ClaimUntil, it claims them in the same
// write transaction (SQLite has one writer: claims never overlap).
// It is a UNION of one arm per reason (and per keep-alive provider) rather
// than one OR across the join, so that each arm range-scans its own index.
func (s *Store) DueForRefresh(ctx context.Context, f storage.DueFilter) ([]string, error) {
	since := boundNanos(f.ReadSince)
	if f.ReadSince.IsZero() {
		since = int64(math.MinInt64)
	}
	args := []any{boundNanos(f.Now), boundNanos(f.ExpiringBefore), since, limit(f.Limit)}
	arms := []string{dueAhead}
	for _, k := range f.KeepAlive {
		if k.UntouchedBefore.IsZero() {
			continue
		}
		args = append(args, k.ProviderID, boundNanos(k.UntouchedBefore))
		arms = append(arms, fmt.Sprintf(dueKeepAlive, len(args)-1, len(args)))
	}
	q := "SELECT id FROM (\n" + strings.Join(arms, "\nUNION\n") + "\n)\nORDER BY expires_at ASC NULLS LAST, id\nLIMIT ?4"
	if f.ClaimUntil.IsZero() {
		return queryIDs(ctx, s.read, q, args)
	}
	var ids []string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if ids, err = queryIDs(ctx, tx, q, args); err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, `UPDATE connections SET refresh_claim_until = ? WHERE id = ?`)
		if err != nil {
			return wrap("claim due connections", err)
		}
		defer stmt.Close()
		until := boundNanos(f.ClaimUntil)
		for _, id := range ids {
			if _, err := stmt.ExecContext(ctx, until, id); err != nil {
				return wrap("claim due connections", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// ReleaseClaims ends the claims on ids, in one transaction.
func (s *Store) ReleaseClaims(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `UPDATE connections SET refresh_claim_until = NULL
            WHERE id = ? AND refresh_claim_until IS NOT NULL`)
		if err != nil {
			return wrap("release claims", err)
		}
		defer stmt.Close()
		for _, id := range ids {
			if _, err := stmt.ExecContext(ctx, id); err != nil {
				return wrap("release claims", err)
			}
		}
		return nil
	})
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryIDs(ctx context.Context, db querier, q string, args []any) ([]string, error) {
	const op = "due for refresh"
	rows, err := db.QueryContext(ctx, q, args...)
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

// RecordReads moves each connection's last read time forward, in one
// transaction.
func (s *Store) RecordReads(ctx context.Context, reads []storage.Read) error {
	if len(reads) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `UPDATE connections SET last_read_at = ?2
            WHERE id = ?1 AND (last_read_at IS NULL OR last_read_at < ?2)`)
		if err != nil {
			return wrap("record reads", err)
		}
		defer stmt.Close()
		for _, r := range reads {
			if _, err := stmt.ExecContext(ctx, r.ConnectionID, boundNanos(r.At)); err != nil {
				return wrap("record reads", err)
			}
		}
		return nil
	})
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

// TakeProviderCall counts one call to the provider if its window has room,
// in one write transaction (SQLite's single writer makes it atomic).
func (s *Store) TakeProviderCall(ctx context.Context, c storage.ProviderCall) (bool, int, error) {
	const op = "take provider call"
	taken, left := false, 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO provider_budgets (provider_id, window_start) VALUES (?, ?)
            ON CONFLICT (provider_id) DO NOTHING`, c.ProviderID, boundNanos(c.WindowStart)); err != nil {
			return wrap(op, err)
		}
		var start, calls int64
		var throttled sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT window_start, calls, throttled_until FROM provider_budgets WHERE provider_id = ?`,
			c.ProviderID).Scan(&start, &calls, &throttled); err != nil {
			return wrap(op, err)
		}
		limit := c.Limit
		if throttled.Valid && throttled.Int64 > c.Now.UnixNano() {
			limit = c.ThrottledLimit
		}
		if ws := c.WindowStart.UnixNano(); start < ws {
			start, calls = ws, 0
		}
		if calls >= int64(limit) {
			return nil
		}
		calls++
		if _, err := tx.ExecContext(ctx, `UPDATE provider_budgets SET window_start = ?, calls = ? WHERE provider_id = ?`,
			start, calls, c.ProviderID); err != nil {
			return wrap(op, err)
		}
		taken, left = true, limit-int(calls)
		return nil
	})
	return taken, left, err
}

// ThrottleProvider keeps the provider throttled until until.
func (s *Store) ThrottleProvider(ctx context.Context, providerID string, until time.Time) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO provider_budgets (provider_id, window_start, throttled_until) VALUES (?1, ?2, ?2)
        ON CONFLICT (provider_id) DO UPDATE SET throttled_until = max(COALESCE(throttled_until, 0), excluded.throttled_until)`,
		providerID, boundNanos(until))
	return wrap("throttle provider", err)
}
