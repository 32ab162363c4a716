package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

const revocationColumns = `id, connection_id, provider_id, sealed, attempts, next_attempt_at, give_up_at,
    last_error_class, created_at, updated_at`

func scanRevocation(row scanner) (storage.Revocation, error) {
	var (
		r                     storage.Revocation
		next, giveUp, cr, upd sql.NullInt64
	)
	if err := row.Scan(&r.ID, &r.ConnectionID, &r.ProviderID, &r.Sealed, &r.Attempts, &next, &giveUp,
		&r.LastErrorClass, &cr, &upd); err != nil {
		return storage.Revocation{}, err
	}
	r.NextAttemptAt, r.GiveUpAt, r.CreatedAt, r.UpdatedAt = fromNanos(next), fromNanos(giveUp), fromNanos(cr), fromNanos(upd)
	return r, nil
}

func insertRevocation(ctx context.Context, q execer, r storage.Revocation, op string) error {
	if r.ID == "" || len(r.Sealed) == 0 {
		return fmt.Errorf("sqlite: %s: id and sealed tokens are required", op)
	}
	if err := checkTimes(r.NextAttemptAt, r.GiveUpAt, r.CreatedAt, r.UpdatedAt); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	_, err := q.ExecContext(ctx, `INSERT INTO revocations (`+revocationColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.ConnectionID, r.ProviderID, r.Sealed, r.Attempts, r.NextAttemptAt.UnixNano(), r.GiveUpAt.UnixNano(),
		r.LastErrorClass, r.CreatedAt.UnixNano(), r.UpdatedAt.UnixNano())
	return wrap(op, err)
}

// DeleteConnectionRevoking runs fn, the insert and the delete in one
// IMMEDIATE transaction.
func (s *Store) DeleteConnectionRevoking(ctx context.Context, id string, fn func(storage.Connection, *storage.Token) (*storage.Revocation, error)) error {
	op := fmt.Sprintf("delete connection %q for revocation", id)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := scanConnection(tx.QueryRowContext(ctx, `SELECT `+connectionColumns+` FROM connections WHERE id = ?`, id))
		if err != nil {
			return wrap(op, err)
		}
		var current *storage.Token
		switch tok, err := getToken(ctx, tx, id); {
		case err == nil:
			current = &tok
		case !errors.Is(err, sql.ErrNoRows):
			return wrap(op, err)
		}
		rev, err := fn(cur, current)
		if err != nil {
			return err
		}
		if rev != nil {
			if err := insertRevocation(ctx, tx, *rev, op); err != nil {
				return err
			}
		}
		if err := recordLifecycle(ctx, tx, &cur, nil); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM connections WHERE id = ?`, id)
		return wrap(op, err)
	})
}

// CreateRevocation inserts r.
func (s *Store) CreateRevocation(ctx context.Context, r storage.Revocation) error {
	return insertRevocation(ctx, s.write, r, fmt.Sprintf("create revocation %q", r.ID))
}

// ClaimRevocations selects and moves the due rows in one IMMEDIATE
// transaction: SQLite has one writer, so no other claim interleaves.
func (s *Store) ClaimRevocations(ctx context.Context, now, leaseUntil time.Time, n int) ([]storage.Revocation, error) {
	const op = "claim revocations"
	if err := checkTimes(now, leaseUntil); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var out []storage.Revocation
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+revocationColumns+` FROM revocations
WHERE next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`, now.UnixNano(), limit(n))
		if err != nil {
			return wrap(op, err)
		}
		for rows.Next() {
			r, err := scanRevocation(rows)
			if err != nil {
				rows.Close()
				return wrap(op, err)
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return wrap(op, err)
		}
		rows.Close()
		for i := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE revocations SET next_attempt_at = ? WHERE id = ?`, leaseUntil.UnixNano(), out[i].ID); err != nil {
				return wrap(op, err)
			}
			out[i].NextAttemptAt = leaseUntil.UTC()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateRevocation is a read-check-write in one IMMEDIATE transaction.
func (s *Store) UpdateRevocation(ctx context.Context, id string, fn func(storage.Revocation) (storage.Revocation, error)) (storage.Revocation, error) {
	op := fmt.Sprintf("update revocation %q", id)
	var out storage.Revocation
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := scanRevocation(tx.QueryRowContext(ctx, `SELECT `+revocationColumns+` FROM revocations WHERE id = ?`, id))
		if err != nil {
			return wrap(op, err)
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		next.ID, next.ConnectionID, next.ProviderID, next.Sealed, next.CreatedAt = cur.ID, cur.ConnectionID, cur.ProviderID, cur.Sealed, cur.CreatedAt
		if err := checkTimes(next.NextAttemptAt, next.GiveUpAt, next.UpdatedAt); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE revocations SET attempts = ?, next_attempt_at = ?, give_up_at = ?,
    last_error_class = ?, updated_at = ? WHERE id = ?`,
			next.Attempts, next.NextAttemptAt.UnixNano(), next.GiveUpAt.UnixNano(), next.LastErrorClass, next.UpdatedAt.UnixNano(), id)
		if err != nil {
			return wrap(op, err)
		}
		out, err = scanRevocation(tx.QueryRowContext(ctx, `SELECT `+revocationColumns+` FROM revocations WHERE id = ?`, id))
		return wrap(op, err)
	})
	if err != nil {
		return storage.Revocation{}, err
	}
	return out, nil
}

// DeleteRevocation removes the revocation.
func (s *Store) DeleteRevocation(ctx context.Context, id string) error {
	return deleteByID(ctx, s.write, "revocations", id, fmt.Sprintf("delete revocation %q", id))
}

// CountRevocations counts the pending revocations.
func (s *Store) CountRevocations(ctx context.Context) (int64, error) {
	var n int64
	err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM revocations`).Scan(&n)
	return n, wrap("count revocations", err)
}
