package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dromos-dev/dromos/internal/storage"
)

const stepUpColumns = `id, connection_id, scopes, added, return_url, status, status_reason, nonce,
    pkce_verifier, created_at, updated_at, expires_at`

func scanStepUp(row pgx.Row) (storage.StepUp, error) {
	var (
		s                         storage.StepUp
		status                    string
		verifier                  []byte
		created, updated, expires pgtype.Timestamptz
	)
	err := row.Scan(&s.ID, &s.ConnectionID, &s.Scopes, &s.Added, &s.ReturnURL, &status, &s.StatusReason, &s.Nonce,
		&verifier, &created, &updated, &expires)
	if err != nil {
		return storage.StepUp{}, err
	}
	s.Scopes, s.Added = nilIfNone(s.Scopes), nilIfNone(s.Added)
	s.Status = storage.StepUpStatus(status)
	s.PKCEVerifier = nilIfEmpty(verifier)
	s.CreatedAt, s.UpdatedAt, s.ExpiresAt = fromNullTime(created), fromNullTime(updated), fromNullTime(expires)
	return s, nil
}

func stepUpArgs(s storage.StepUp) []any {
	return []any{s.ID, s.ConnectionID, nonNil(s.Scopes), nonNil(s.Added), s.ReturnURL, string(s.Status), s.StatusReason,
		s.Nonce, nilIfEmpty(s.PKCEVerifier), nullTime(s.CreatedAt), nullTime(s.UpdatedAt), nullTime(s.ExpiresAt)}
}

// CreateStepUp locks the connection row (SELECT ... FOR UPDATE), so two
// step-ups of one connection are created one after the other and each
// fn sees the step-ups created before it.
func (s *Store) CreateStepUp(ctx context.Context, su storage.StepUp, since time.Time, fn func(storage.Connection, []storage.StepUp) error) error {
	op := fmt.Sprintf("create step-up %q", su.ID)
	if su.CreatedAt.IsZero() {
		return fmt.Errorf("postgres: %s: created_at is required", op)
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		conn, err := scanConnection(tx.QueryRow(ctx, `SELECT `+connectionColumns+` FROM connections WHERE id = $1 FOR UPDATE`, su.ConnectionID))
		if err != nil {
			return wrap(op, err)
		}
		rows, err := tx.Query(ctx, `SELECT `+stepUpColumns+` FROM step_ups
WHERE connection_id = $1 AND created_at >= $2 ORDER BY created_at DESC, id DESC`, su.ConnectionID, since)
		if err != nil {
			return wrap(op, err)
		}
		recent, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.StepUp, error) { return scanStepUp(r) })
		if err != nil {
			return wrap(op, err)
		}
		if err := fn(conn, recent); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO step_ups (`+stepUpColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, stepUpArgs(su)...)
		return wrap(op, err)
	})
}

// LatestStepUp returns the connection's newest step-up.
func (s *Store) LatestStepUp(ctx context.Context, connectionID string) (storage.StepUp, error) {
	su, err := scanStepUp(s.pool.QueryRow(ctx, `SELECT `+stepUpColumns+` FROM step_ups
WHERE connection_id = $1 ORDER BY expires_at DESC, created_at DESC, id DESC LIMIT 1`, connectionID))
	if err != nil {
		return storage.StepUp{}, wrap(fmt.Sprintf("latest step-up of connection %q", connectionID), err)
	}
	return su, nil
}

// UpdateStepUp locks the step-up row with SELECT ... FOR UPDATE.
func (s *Store) UpdateStepUp(ctx context.Context, id string, fn func(storage.StepUp) (storage.StepUp, error)) (storage.StepUp, error) {
	var out storage.StepUp
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = updateStepUp(ctx, tx, id, fn)
		return err
	})
	if err != nil {
		return storage.StepUp{}, err
	}
	return out, nil
}

// FinishStepUp locks the connection row, then the step-up row, the order
// DeleteConnection (whose cascade reaches the step-ups) and CreateStepUp
// lock them in, so the three cannot deadlock; then it writes both and the
// token in one transaction.
func (s *Store) FinishStepUp(ctx context.Context, id string, fn func(storage.StepUp, storage.Connection, *storage.Token) (storage.StepUp, storage.Connection, storage.TokenChange, error)) (storage.StepUp, storage.Connection, error) {
	var (
		outStep storage.StepUp
		outConn storage.Connection
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var connID string
		if err := tx.QueryRow(ctx, `SELECT connection_id FROM step_ups WHERE id = $1`, id).Scan(&connID); err != nil {
			return wrap(fmt.Sprintf("finish step-up %q", id), err)
		}
		var err error
		outConn, err = updateConnection(ctx, tx, connID, func(c storage.Connection, tok *storage.Token) (storage.Connection, storage.TokenChange, error) {
			var (
				nc     storage.Connection
				change storage.TokenChange
			)
			var err error
			outStep, err = updateStepUp(ctx, tx, id, func(su storage.StepUp) (storage.StepUp, error) {
				var (
					next storage.StepUp
					err  error
				)
				next, nc, change, err = fn(su, c, tok)
				return next, err
			})
			return nc, change, err
		})
		return err
	})
	if err != nil {
		return storage.StepUp{}, storage.Connection{}, err
	}
	return outStep, outConn, nil
}

// updateStepUp is UpdateStepUp inside the caller's transaction.
func updateStepUp(ctx context.Context, tx pgx.Tx, id string, fn func(storage.StepUp) (storage.StepUp, error)) (storage.StepUp, error) {
	op := fmt.Sprintf("update step-up %q", id)
	cur, err := scanStepUp(tx.QueryRow(ctx, `SELECT `+stepUpColumns+` FROM step_ups WHERE id = $1 FOR UPDATE`, id))
	if err != nil {
		return storage.StepUp{}, wrap(op, err)
	}
	next, err := fn(cur)
	if err != nil {
		return storage.StepUp{}, err
	}
	next.ID, next.ConnectionID, next.CreatedAt = cur.ID, cur.ConnectionID, cur.CreatedAt
	if _, err := tx.Exec(ctx, `UPDATE step_ups SET scopes = $3, added = $4, return_url = $5, status = $6,
    status_reason = $7, nonce = $8, pkce_verifier = $9, updated_at = $11, expires_at = $12
WHERE id = $1 AND connection_id = $2 AND created_at = $10`, stepUpArgs(next)...); err != nil {
		return storage.StepUp{}, wrap(op, err)
	}
	out, err := scanStepUp(tx.QueryRow(ctx, `SELECT `+stepUpColumns+` FROM step_ups WHERE id = $1`, id))
	return out, wrap(op, err)
}
