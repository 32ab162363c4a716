package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

const deviceGrantColumns = `connection_id, provider_id, device_code, interval_seconds, next_poll_at, expires_at,
    polls, last_polled_at, created_at, updated_at`

func scanDeviceGrant(row scanner) (storage.DeviceGrant, error) {
	var (
		d                        storage.DeviceGrant
		next, exp, last, cr, upd sql.NullInt64
	)
	if err := row.Scan(&d.ConnectionID, &d.ProviderID, &d.DeviceCode, &d.IntervalSeconds, &next, &exp,
		&d.Polls, &last, &cr, &upd); err != nil {
		return storage.DeviceGrant{}, err
	}
	d.NextPollAt, d.ExpiresAt, d.LastPolledAt = fromNanos(next), fromNanos(exp), fromNanos(last)
	d.CreatedAt, d.UpdatedAt = fromNanos(cr), fromNanos(upd)
	return d, nil
}

// CreateDeviceConnection inserts the connection and its grant in one
// IMMEDIATE transaction, within the client's cap on pending connections.
func (s *Store) CreateDeviceConnection(ctx context.Context, c storage.Connection, d storage.DeviceGrant, maxPending int) error {
	op := fmt.Sprintf("create device connection %q", c.ID)
	if d.ConnectionID != c.ID || len(d.DeviceCode) == 0 || d.IntervalSeconds <= 0 {
		return fmt.Errorf("sqlite: %s: the grant needs the connection's id, a sealed device code and a positive interval", op)
	}
	if err := checkTimes(c.CreatedAt, d.NextPollAt, d.ExpiresAt, d.LastPolledAt, d.CreatedAt, d.UpdatedAt); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := insertPending(ctx, tx, c, maxPending, op); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO device_grants (`+deviceGrantColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			d.ConnectionID, d.ProviderID, d.DeviceCode, d.IntervalSeconds, d.NextPollAt.UnixNano(), d.ExpiresAt.UnixNano(),
			d.Polls, nanos(d.LastPolledAt), d.CreatedAt.UnixNano(), d.UpdatedAt.UnixNano())
		return wrap(op, err)
	})
}

// GetDeviceGrant returns the connection's grant.
func (s *Store) GetDeviceGrant(ctx context.Context, connectionID string) (storage.DeviceGrant, error) {
	d, err := scanDeviceGrant(s.read.QueryRowContext(ctx, `SELECT `+deviceGrantColumns+` FROM device_grants WHERE connection_id = ?`, connectionID))
	if err != nil {
		return storage.DeviceGrant{}, wrap(fmt.Sprintf("get device grant %q", connectionID), err)
	}
	return d, nil
}

// ClaimDeviceGrants selects and moves the due rows in one IMMEDIATE
// transaction: SQLite has one writer, so no other claim interleaves, and
// the moved next_poll_at keeps the next claimer off them.
func (s *Store) ClaimDeviceGrants(ctx context.Context, now, leaseUntil time.Time, n int) ([]storage.DeviceGrant, error) {
	const op = "claim device grants"
	if err := checkTimes(now, leaseUntil); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var out []storage.DeviceGrant
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `SELECT `+deviceGrantColumns+` FROM device_grants
WHERE next_poll_at <= ? ORDER BY next_poll_at, connection_id LIMIT ?`, now.UnixNano(), limit(n))
		if err != nil {
			return wrap(op, err)
		}
		for rows.Next() {
			d, err := scanDeviceGrant(rows)
			if err != nil {
				rows.Close()
				return wrap(op, err)
			}
			out = append(out, d)
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return wrap(op, err)
		}
		rows.Close()
		for i := range out {
			// The condition makes the claim a compare-and-swap on its own,
			// whatever the transaction mode.
			res, err := tx.ExecContext(ctx, `UPDATE device_grants SET next_poll_at = ? WHERE connection_id = ? AND next_poll_at <= ?`,
				leaseUntil.UnixNano(), out[i].ConnectionID, now.UnixNano())
			if err != nil {
				return wrap(op, err)
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return fmt.Errorf("sqlite: %s: grant %q changed during the claim", op, out[i].ConnectionID)
			}
			out[i].NextPollAt = leaseUntil.UTC()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateDeviceGrant is a read-check-write in one IMMEDIATE transaction.
func (s *Store) UpdateDeviceGrant(ctx context.Context, connectionID string, fn func(storage.DeviceGrant) (storage.DeviceGrant, error)) (storage.DeviceGrant, error) {
	op := fmt.Sprintf("update device grant %q", connectionID)
	var out storage.DeviceGrant
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := scanDeviceGrant(tx.QueryRowContext(ctx, `SELECT `+deviceGrantColumns+` FROM device_grants WHERE connection_id = ?`, connectionID))
		if err != nil {
			return wrap(op, err)
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		if next.IntervalSeconds <= 0 {
			return fmt.Errorf("sqlite: %s: interval must be positive", op)
		}
		if err := checkTimes(next.NextPollAt, next.ExpiresAt, next.LastPolledAt, next.UpdatedAt); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		if len(next.DeviceCode) == 0 {
			next.DeviceCode = cur.DeviceCode
		}
		_, err = tx.ExecContext(ctx, `UPDATE device_grants SET device_code = ?, interval_seconds = ?, next_poll_at = ?, expires_at = ?,
    polls = ?, last_polled_at = ?, updated_at = ? WHERE connection_id = ?`,
			next.DeviceCode, next.IntervalSeconds, next.NextPollAt.UnixNano(), next.ExpiresAt.UnixNano(), next.Polls,
			nanos(next.LastPolledAt), next.UpdatedAt.UnixNano(), connectionID)
		if err != nil {
			return wrap(op, err)
		}
		out, err = scanDeviceGrant(tx.QueryRowContext(ctx, `SELECT `+deviceGrantColumns+` FROM device_grants WHERE connection_id = ?`, connectionID))
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
	res, err := s.write.ExecContext(ctx, `DELETE FROM device_grants WHERE connection_id = ?`, connectionID)
	if err != nil {
		return wrap(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap(op, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: %s: %w", op, storage.ErrNotFound)
	}
	return nil
}
