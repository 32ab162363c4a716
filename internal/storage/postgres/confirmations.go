package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dromos-dev/dromos/internal/storage"
)

// lapsedConfirmations lists the candidates; the status literal lets it
// range-scan connections_status_expires_at on its leading column, and the
// rows awaiting confirmation are few (each lives minutes).
const lapsedConfirmations = `SELECT id FROM connections
WHERE status = 'awaiting_confirmation' AND confirmation_expires_at <= $1
ORDER BY confirmation_expires_at, id
LIMIT $2`

// lockLapsed is the claim: the row is taken only if no other transaction
// holds it (a sweep of another replica, or a confirmation being presented
// right now) and it is still lapsed once locked, which leaves out a row
// another sweep failed and committed after the list was read.
const lockLapsed = `SELECT ` + connectionColumns + ` FROM connections
WHERE id = $1 AND status = 'awaiting_confirmation' AND confirmation_expires_at <= $2
FOR UPDATE SKIP LOCKED`

// UpdateLapsedConfirmations runs fn on each lapsed confirmation it can
// claim, one transaction per connection.
func (s *Store) UpdateLapsedConfirmations(ctx context.Context, now time.Time, n int, fn func(storage.Connection, *storage.Token) (storage.Connection, storage.TokenChange, error)) ([]storage.Connection, error) {
	rows, err := s.pool.Query(ctx, lapsedConfirmations, now, limit(n))
	if err != nil {
		return nil, wrap("lapsed confirmations", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, wrap("lapsed confirmations", err)
	}
	var out []storage.Connection
	for _, id := range ids {
		var c storage.Connection
		claimed := false
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			cur, err := scanConnection(tx.QueryRow(ctx, lockLapsed, id, now))
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			if err != nil {
				return wrap("claim lapsed confirmation", err)
			}
			claimed = true
			c, err = updateLockedConnection(ctx, tx, cur, fn)
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
