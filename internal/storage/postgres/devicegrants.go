package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dromos-dev/dromos/internal/storage"
)

const deviceGrantColumns = `connection_id, provider_id, device_code, interval_seconds, next_poll_at, expires_at,
    polls, last_polled_at, created_at, updated_at`

func scanDeviceGrant(row pgx.Row) (storage.DeviceGrant, error) {
	var (
		d                        storage.DeviceGrant
		next, exp, last, cr, upd pgtype.Timestamptz
	)
	if err := row.Scan(&d.ConnectionID, &d.ProviderID, &d.DeviceCode, &d.IntervalSeconds, &next, &exp,
		&d.Polls, &last, &cr, &upd); err != nil {
		return storage.DeviceGrant{}, err
	}
	d.NextPollAt, d.ExpiresAt, d.LastPolledAt = fromNullTime(next), fromNullTime(exp), fromNullTime(last)
	d.CreatedAt, d.UpdatedAt = fromNullTime(cr), fromNullTime(upd)
	return d, nil
}

// CreateDeviceConnection inserts the connection and its grant in one
// transaction, within the client's cap on pending connections.
func (s *Store) CreateDeviceConnection(ctx context.Context, c storage.Connection, d storage.DeviceGrant, maxPending int) error {
	op := fmt.Sprintf("create device connection %q", c.ID)
	if d.ConnectionID != c.ID || len(d.DeviceCode) == 0 || d.IntervalSeconds <= 0 {
		return fmt.Errorf("postgres: %s: the grant needs the connection's id, a sealed device code and a positive interval", op)
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := insertPending(ctx, tx, c, maxPending, op); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO device_grants (`+deviceGrantColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			d.ConnectionID, d.ProviderID, d.DeviceCode, d.IntervalSeconds, d.NextPollAt.UTC(), d.ExpiresAt.UTC(),
			d.Polls, nullTime(d.LastPolledAt), d.CreatedAt.UTC(), d.UpdatedAt.UTC())
		return wrap(op, err)
	})
}

// GetDeviceGrant returns the connection's grant.
func (s *Store) GetDeviceGrant(ctx context.Context, connectionID string) (storage.DeviceGrant, error) {
	d, err := scanDeviceGrant(s.pool.QueryRow(ctx, `SELECT `+deviceGrantColumns+` FROM device_grants WHERE connection_id = $1`, connectionID))
	if err != nil {
		return storage.DeviceGrant{}, wrap(fmt.Sprintf("get device grant %q", connectionID), err)
	}
	return d, nil
}

// ClaimDeviceGrants moves the due rows in one statement; SKIP LOCKED lets
// replicas claiming at the same time take disjoint rows instead of
// waiting for each other (and the moved next_poll_at keeps them from
// taking the same row one after the other).
func (s *Store) ClaimDeviceGrants(ctx context.Context, now, leaseUntil time.Time, n int) ([]storage.DeviceGrant, error) {
	const op = "claim device grants"
	rows, err := s.pool.Query(ctx, `WITH due AS (
    SELECT connection_id FROM device_grants WHERE next_poll_at <= $1
    ORDER BY next_poll_at, connection_id LIMIT $3 FOR UPDATE SKIP LOCKED)
UPDATE device_grants d SET next_poll_at = $2 FROM due WHERE d.connection_id = due.connection_id
RETURNING d.connection_id, d.provider_id, d.device_code, d.interval_seconds, d.next_poll_at, d.expires_at,
    d.polls, d.last_polled_at, d.created_at, d.updated_at`, now.UTC(), leaseUntil.UTC(), limit(n))
	if err != nil {
		return nil, wrap(op, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.DeviceGrant, error) { return scanDeviceGrant(r) })
	if err != nil {
		return nil, wrap(op, err)
	}
	// RETURNING gives no order; the oldest grants first.
	slices.SortFunc(out, func(a, b storage.DeviceGrant) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ConnectionID, b.ConnectionID))
	})
	return out, nil
}

// UpdateDeviceGrant is a read-check-write under the row lock.
func (s *Store) UpdateDeviceGrant(ctx context.Context, connectionID string, fn func(storage.DeviceGrant) (storage.DeviceGrant, error)) (storage.DeviceGrant, error) {
	op := fmt.Sprintf("update device grant %q", connectionID)
	var out storage.DeviceGrant
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := scanDeviceGrant(tx.QueryRow(ctx, `SELECT `+deviceGrantColumns+` FROM device_grants WHERE connection_id = $1 FOR UPDATE`, connectionID))
		if err != nil {
			return wrap(op, err)
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		if next.IntervalSeconds <= 0 {
			return fmt.Errorf("postgres: %s: interval must be positive", op)
		}
		if len(next.DeviceCode) == 0 {
			next.DeviceCode = cur.DeviceCode
		}
		out, err = scanDeviceGrant(tx.QueryRow(ctx, `UPDATE device_grants SET interval_seconds = $2, next_poll_at = $3,
    expires_at = $4, polls = $5, last_polled_at = $6, updated_at = $7, device_code = $8 WHERE connection_id = $1 RETURNING `+deviceGrantColumns,
			connectionID, next.IntervalSeconds, next.NextPollAt.UTC(), next.ExpiresAt.UTC(), next.Polls,
			nullTime(next.LastPolledAt), next.UpdatedAt.UTC(), next.DeviceCode))
		return wrap(op, err)
	})
	if err != nil {
		return storage.DeviceGrant{}, err
	}
	return out, nil
}

// DeleteDeviceGrant removes the connection's grant.
func (s *Store) DeleteDeviceGrant(ctx context.Context, connectionID string) error {
	op := fmt.Sprintf("delete device grant %q", connectionID)
	tag, err := s.pool.Exec(ctx, `DELETE FROM device_grants WHERE connection_id = $1`, connectionID)
	if err != nil {
		return wrap(op, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: %s: %w", op, storage.ErrNotFound)
	}
	return nil
}
