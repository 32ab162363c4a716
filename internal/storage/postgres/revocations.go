package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dromos-dev/dromos/internal/storage"
)

const revocationColumns = `id, connection_id, provider_id, sealed, attempts, next_attempt_at, give_up_at,
    last_error_class, created_at, updated_at`

func scanRevocation(row pgx.Row) (storage.Revocation, error) {
	var (
		r                     storage.Revocation
		next, giveUp, cr, upd pgtype.Timestamptz
	)
	if err := row.Scan(&r.ID, &r.ConnectionID, &r.ProviderID, &r.Sealed, &r.Attempts, &next, &giveUp,
		&r.LastErrorClass, &cr, &upd); err != nil {
		return storage.Revocation{}, err
	}
	r.NextAttemptAt, r.GiveUpAt, r.CreatedAt, r.UpdatedAt = fromNullTime(next), fromNullTime(giveUp), fromNullTime(cr), fromNullTime(upd)
	return r, nil
}

func insertRevocation(ctx context.Context, q execer, r storage.Revocation, op string) error {
	if r.ID == "" || len(r.Sealed) == 0 {
		return fmt.Errorf("postgres: %s: id and sealed tokens are required", op)
	}
	_, err := q.Exec(ctx, `INSERT INTO revocations (`+revocationColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		r.ID, r.ConnectionID, r.ProviderID, r.Sealed, r.Attempts, r.NextAttemptAt.UTC(), r.GiveUpAt.UTC(),
		r.LastErrorClass, r.CreatedAt.UTC(), r.UpdatedAt.UTC())
	return wrap(op, err)
}

// DeleteConnectionRevoking runs fn, the insert and the delete in one
// transaction holding the connection's row lock.
func (s *Store) DeleteConnectionRevoking(ctx context.Context, id string, fn func(storage.Connection, *storage.Token) (*storage.Revocation, error)) error {
	op := fmt.Sprintf("delete connection %q for revocation", id)
	return s.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := scanConnection(tx.QueryRow(ctx, `SELECT `+connectionColumns+` FROM connections WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return wrap(op, err)
		}
		var current *storage.Token
		switch tok, err := getToken(ctx, tx, id); {
		case err == nil:
			current = &tok
		case !errors.Is(err, pgx.ErrNoRows):
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
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		_, err = tx.Exec(ctx, `DELETE FROM connections WHERE id = $1`, id)
		return wrap(op, err)
	})
}

// CreateRevocation inserts r.
func (s *Store) CreateRevocation(ctx context.Context, r storage.Revocation) error {
	return insertRevocation(ctx, s.pool, r, fmt.Sprintf("create revocation %q", r.ID))
}

// ClaimRevocations moves the due rows in one statement; SKIP LOCKED lets
// replicas claiming at the same time take disjoint rows instead of
// waiting for each other.
func (s *Store) ClaimRevocations(ctx context.Context, now, leaseUntil time.Time, n int) ([]storage.Revocation, error) {
	const op = "claim revocations"
	rows, err := s.pool.Query(ctx, `WITH due AS (
    SELECT id FROM revocations WHERE next_attempt_at <= $1
    ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
UPDATE revocations r SET next_attempt_at = $2 FROM due WHERE r.id = due.id
RETURNING r.id, r.connection_id, r.provider_id, r.sealed, r.attempts, r.next_attempt_at, r.give_up_at,
    r.last_error_class, r.created_at, r.updated_at`, now.UTC(), leaseUntil.UTC(), limit(n))
	if err != nil {
		return nil, wrap(op, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Revocation, error) { return scanRevocation(r) })
	if err != nil {
		return nil, wrap(op, err)
	}
	// RETURNING gives no order; callers get the soonest first.
	slices.SortFunc(out, func(a, b storage.Revocation) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// UpdateRevocation is a read-check-write under the row lock.
func (s *Store) UpdateRevocation(ctx context.Context, id string, fn func(storage.Revocation) (storage.Revocation, error)) (storage.Revocation, error) {
	op := fmt.Sprintf("update revocation %q", id)
	var out storage.Revocation
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := scanRevocation(tx.QueryRow(ctx, `SELECT `+revocationColumns+` FROM revocations WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return wrap(op, err)
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		out, err = scanRevocation(tx.QueryRow(ctx, `UPDATE revocations SET attempts = $2, next_attempt_at = $3, give_up_at = $4,
    last_error_class = $5, updated_at = $6 WHERE id = $1 RETURNING `+revocationColumns,
			id, next.Attempts, next.NextAttemptAt.UTC(), next.GiveUpAt.UTC(), next.LastErrorClass, next.UpdatedAt.UTC()))
		return wrap(op, err)
	})
	if err != nil {
		return storage.Revocation{}, err
	}
	return out, nil
}

// DeleteRevocation removes the revocation.
func (s *Store) DeleteRevocation(ctx context.Context, id string) error {
	op := fmt.Sprintf("delete revocation %q", id)
	tag, err := s.pool.Exec(ctx, `DELETE FROM revocations WHERE id = $1`, id)
	if err != nil {
		return wrap(op, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: %s: %w", op, storage.ErrNotFound)
	}
	return nil
}

// CountRevocations counts the pending revocations.
func (s *Store) CountRevocations(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM revocations`).Scan(&n)
	return n, wrap("count revocations", err)
}
