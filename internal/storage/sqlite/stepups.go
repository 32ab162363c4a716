package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

const stepUpColumns = `id, connection_id, scopes, added, return_url, status, status_reason, nonce,
    pkce_verifier, created_at, updated_at, expires_at`

func scanStepUp(row scanner) (storage.StepUp, error) {
	var (
		s                         storage.StepUp
		status                    string
		scopes, added             sql.NullString
		verifier                  []byte
		created, updated, expires sql.NullInt64
	)
	err := row.Scan(&s.ID, &s.ConnectionID, &scopes, &added, &s.ReturnURL, &status, &s.StatusReason, &s.Nonce,
		&verifier, &created, &updated, &expires)
	if err != nil {
		return storage.StepUp{}, err
	}
	if s.Scopes, err = decodeList(scopes); err != nil {
		return storage.StepUp{}, fmt.Errorf("decode scopes: %w", err)
	}
	if s.Added, err = decodeList(added); err != nil {
		return storage.StepUp{}, fmt.Errorf("decode added scopes: %w", err)
	}
	s.Status = storage.StepUpStatus(status)
	s.PKCEVerifier = nilIfEmpty(verifier)
	s.CreatedAt, s.UpdatedAt, s.ExpiresAt = fromNanos(created), fromNanos(updated), fromNanos(expires)
	return s, nil
}

// stepUpArgs returns the column values of s in stepUpColumns order.
func stepUpArgs(s storage.StepUp) ([]any, error) {
	if err := checkTimes(s.CreatedAt, s.UpdatedAt, s.ExpiresAt); err != nil {
		return nil, err
	}
	scopes, err := encodeList(s.Scopes)
	if err != nil {
		return nil, fmt.Errorf("encode scopes: %w", err)
	}
	added, err := encodeList(s.Added)
	if err != nil {
		return nil, fmt.Errorf("encode added scopes: %w", err)
	}
	return []any{s.ID, s.ConnectionID, scopes, added, s.ReturnURL, string(s.Status), s.StatusReason, s.Nonce,
		blob(s.PKCEVerifier), nanos(s.CreatedAt), nanos(s.UpdatedAt), nanos(s.ExpiresAt)}, nil
}

// CreateStepUp runs fn and the insert in one IMMEDIATE transaction: the
// single writer serialises it with every other write to the connection.
func (s *Store) CreateStepUp(ctx context.Context, su storage.StepUp, since time.Time, fn func(storage.Connection, []storage.StepUp) error) error {
	op := fmt.Sprintf("create step-up %q", su.ID)
	if su.CreatedAt.IsZero() {
		return fmt.Errorf("sqlite: %s: created_at is required", op)
	}
	args, err := stepUpArgs(su)
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if err := checkTimes(since); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		conn, err := scanConnection(tx.QueryRowContext(ctx, `SELECT `+connectionColumns+` FROM connections WHERE id = ?`, su.ConnectionID))
		if err != nil {
			return wrap(op, err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+stepUpColumns+` FROM step_ups
WHERE connection_id = ? AND created_at >= ? ORDER BY created_at DESC, id DESC`, su.ConnectionID, since.UnixNano())
		if err != nil {
			return wrap(op, err)
		}
		var recent []storage.StepUp
		for rows.Next() {
			r, err := scanStepUp(rows)
			if err != nil {
				rows.Close()
				return wrap(op, err)
			}
			recent = append(recent, r)
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return wrap(op, err)
		}
		rows.Close()
		if err := fn(conn, recent); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO step_ups (`+stepUpColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
		return wrap(op, err)
	})
}

// LatestStepUp returns the connection's newest step-up.
func (s *Store) LatestStepUp(ctx context.Context, connectionID string) (storage.StepUp, error) {
	su, err := scanStepUp(s.read.QueryRowContext(ctx, `SELECT `+stepUpColumns+` FROM step_ups
WHERE connection_id = ? ORDER BY expires_at DESC, created_at DESC, id DESC LIMIT 1`, connectionID))
	if err != nil {
		return storage.StepUp{}, wrap(fmt.Sprintf("latest step-up of connection %q", connectionID), err)
	}
	return su, nil
}

// UpdateStepUp is a read-check-write in one IMMEDIATE transaction.
func (s *Store) UpdateStepUp(ctx context.Context, id string, fn func(storage.StepUp) (storage.StepUp, error)) (storage.StepUp, error) {
	var out storage.StepUp
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = updateStepUp(ctx, tx, id, fn)
		return err
	})
	if err != nil {
		return storage.StepUp{}, err
	}
	return out, nil
}

// FinishStepUp updates the step-up, its connection and the token in one
// IMMEDIATE transaction.
func (s *Store) FinishStepUp(ctx context.Context, id string, fn func(storage.StepUp, storage.Connection, *storage.Token) (storage.StepUp, storage.Connection, storage.TokenChange, error)) (storage.StepUp, storage.Connection, error) {
	var (
		outStep storage.StepUp
		outConn storage.Connection
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var connID string
		if err := tx.QueryRowContext(ctx, `SELECT connection_id FROM step_ups WHERE id = ?`, id).Scan(&connID); err != nil {
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
func updateStepUp(ctx context.Context, tx *sql.Tx, id string, fn func(storage.StepUp) (storage.StepUp, error)) (storage.StepUp, error) {
	op := fmt.Sprintf("update step-up %q", id)
	query := `SELECT ` + stepUpColumns + ` FROM step_ups WHERE id = ?`
	cur, err := scanStepUp(tx.QueryRowContext(ctx, query, id))
	if err != nil {
		return storage.StepUp{}, wrap(op, err)
	}
	next, err := fn(cur)
	if err != nil {
		return storage.StepUp{}, err
	}
	next.ID, next.ConnectionID, next.CreatedAt = cur.ID, cur.ConnectionID, cur.CreatedAt
	args, err := stepUpArgs(next)
	if err != nil {
		return storage.StepUp{}, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE step_ups SET (`+stepUpColumns+`) =
(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) WHERE id = ?`, append(args, id)...); err != nil {
		return storage.StepUp{}, wrap(op, err)
	}
	out, err := scanStepUp(tx.QueryRowContext(ctx, query, id))
	return out, wrap(op, err)
}
