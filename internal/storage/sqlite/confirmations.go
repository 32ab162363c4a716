package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

const lapsedConfirmations = `SELECT id FROM connections
WHERE status = 'awaiting_confirmation' AND confirmation_expires_at <= ?
ORDER BY confirmation_expires_at, id
LIMIT ?`

// claimLapsed reads the row in the write transaction only while it is
// still lapsed: SQLite's single writer runs one claim at a time, so a
// sweep that listed a row another sweep (or a confirmation) has changed
// since finds nothing and leaves it.
const claimLapsed = `SELECT ` + connectionColumns + ` FROM connections
WHERE id = ? AND status = 'awaiting_confirmation' AND confirmation_expires_at <= ?`

// UpdateLapsedConfirmations runs fn on each lapsed confirmation it can
// claim, one transaction per connection.
func (s *Store) UpdateLapsedConfirmations(ctx context.Context, now time.Time, n int, fn func(storage.Connection, *storage.Token) (storage.Connection, storage.TokenChange, error)) ([]storage.Connection, error) {
	if err := checkTimes(now); err != nil {
		return nil, err
	}
	rows, err := s.read.QueryContext(ctx, lapsedConfirmations, nanos(now), limit(n))
	if err != nil {
		return nil, wrap("lapsed confirmations", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, wrap("lapsed confirmations", err)
		}
		ids = append(ids, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, wrap("lapsed confirmations", err)
	}
	var out []storage.Connection
	for _, id := range ids {
		var c storage.Connection
		claimed := false
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			cur, err := scanConnection(tx.QueryRowContext(ctx, claimLapsed, id, nanos(now)))
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			if err != nil {
				return wrap("claim lapsed confirmation", err)
			}
			claimed = true
			c, err = updateReadConnection(ctx, tx, cur, fn)
			return err
		})
		if err != nil {
			return out, err
		}
		if claimed {
			out = append(out, c)
		}
	}
	return out, nil
}
