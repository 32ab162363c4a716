package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dromos-dev/dromos/internal/storage"
)

const connectionColumns = `id, workspace_id, user_id, client_name, provider_id, provider_name,
    scopes, return_url, metadata, status, status_reason, nonce, pkce_verifier,
    subject, email, issuer, last_refresh_at, next_refresh_at, last_error_class,
    refresh_lease_until, refresh_lease_owner, created_at, updated_at, expires_at, version,
    confirm_url, confirmation_hash, confirmation_expires_at, expected_identity`

var (
	errEmptyCiphertext = errors.New("token ciphertext is empty")
	errTokenMismatch   = errors.New("token belongs to another connection")
)

func scanConnection(row pgx.Row) (storage.Connection, error) {
	var (
		c                         storage.Connection
		status                    string
		metadata, verifier        []byte
		lastRefresh, nextRefresh  pgtype.Timestamptz
		leaseUntil                pgtype.Timestamptz
		created, updated, expires pgtype.Timestamptz
		confirmExpires            pgtype.Timestamptz
	)
	err := row.Scan(&c.ID, &c.WorkspaceID, &c.UserID, &c.ClientName, &c.ProviderID, &c.ProviderName,
		&c.Scopes, &c.ReturnURL, &metadata, &status, &c.StatusReason, &c.Nonce, &verifier,
		&c.Subject, &c.Email, &c.Issuer, &lastRefresh, &nextRefresh, &c.LastErrorClass,
		&leaseUntil, &c.RefreshLeaseOwner, &created, &updated, &expires, &c.Version,
		&c.ConfirmURL, &c.ConfirmationHash, &confirmExpires, &c.ExpectedIdentity)
	if err != nil {
		return storage.Connection{}, err
	}
	c.ConfirmationExpiresAt = fromNullTime(confirmExpires)
	if c.Metadata, err = decodeMeta(metadata); err != nil {
		return storage.Connection{}, fmt.Errorf("decode metadata: %w", err)
	}
	c.Scopes = nilIfNone(c.Scopes)
	c.Status = storage.ConnectionStatus(status)
	c.PKCEVerifier = nilIfEmpty(verifier)
	c.LastRefreshAt = fromNullTime(lastRefresh)
	c.NextRefreshAt = fromNullTime(nextRefresh)
	c.RefreshLeaseUntil = fromNullTime(leaseUntil)
	c.CreatedAt = fromNullTime(created)
	c.UpdatedAt = fromNullTime(updated)
	c.ExpiresAt = fromNullTime(expires)
	return c, nil
}

// CreateConnection stores c with Version 1.
func (s *Store) CreateConnection(ctx context.Context, c storage.Connection) error {
	return wrap(fmt.Sprintf("create connection %q", c.ID), insertConnection(ctx, s.pool, c))
}

// execer is what both the pool and a transaction offer.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// insertConnection inserts c with Version 1.
func insertConnection(ctx context.Context, q execer, c storage.Connection) error {
	metadata, err := encodeMeta(c.Metadata)
	if err != nil {
		return fmt.Errorf("encode metadata: %w", err)
	}
	_, err = q.Exec(ctx, `INSERT INTO connections (`+connectionColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, 1, $25, $26, $27, $28)`,
		c.ID, c.WorkspaceID, c.UserID, c.ClientName, c.ProviderID, c.ProviderName,
		nonNil(c.Scopes), c.ReturnURL, metadata, string(c.Status), c.StatusReason, c.Nonce, nilIfEmpty(c.PKCEVerifier),
		c.Subject, c.Email, c.Issuer, nullTime(c.LastRefreshAt), nullTime(c.NextRefreshAt), c.LastErrorClass,
		nullTime(c.RefreshLeaseUntil), c.RefreshLeaseOwner, nullTime(c.CreatedAt), nullTime(c.UpdatedAt), nullTime(c.ExpiresAt),
		c.ConfirmURL, c.ConfirmationHash, nullTime(c.ConfirmationExpiresAt), c.ExpectedIdentity)
	return err
}

// CreatePendingConnection counts and inserts under a transaction-scoped
// advisory lock on the client name, so replicas creating consents for one
// client at once take turns and the cap holds. Another client's consents
// are not held up (unless their names' hashes collide, which only costs a
// wait).
func (s *Store) CreatePendingConnection(ctx context.Context, c storage.Connection, maxPending int) error {
	op := fmt.Sprintf("create pending connection %q", c.ID)
	return s.inTx(ctx, func(tx pgx.Tx) error { return insertPending(ctx, tx, c, maxPending, op) })
}

// insertPending counts the client's pending connections under a lock per
// client and inserts c when there is room (always when maxPending <= 0).
func insertPending(ctx context.Context, tx pgx.Tx, c storage.Connection, maxPending int, op string) error {
	if maxPending <= 0 {
		return wrap(op, insertConnection(ctx, tx, c))
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('dromos.pending:' || $1, 0))`, c.ClientName); err != nil {
		return wrap(op, err)
	}
	var n int
	err := tx.QueryRow(ctx, `SELECT count(*) FROM connections
WHERE client_name = $1 AND status = 'pending' AND expires_at > $2`, c.ClientName, c.CreatedAt).Scan(&n)
	if err != nil {
		return wrap(op, err)
	}
	if n >= maxPending {
		return fmt.Errorf("postgres: %s: %w (%d pending)", op, storage.ErrLimitReached, n)
	}
	return wrap(op, insertConnection(ctx, tx, c))
}

// PurgeConnections deletes failed, never-active connections, purgeBatch
// rows per statement; tokens go by cascade.
func (s *Store) PurgeConnections(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM connections WHERE id IN
(SELECT id FROM connections WHERE status = 'failed' AND activated_at IS NULL AND updated_at < $1
 ORDER BY updated_at LIMIT $2)`, before, pruneBatch)
		if err != nil {
			return total, wrap("purge connections", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < pruneBatch {
			return total, nil
		}
	}
}

// GetConnection returns the connection with that id.
func (s *Store) GetConnection(ctx context.Context, id string) (storage.Connection, error) {
	c, err := scanConnection(s.pool.QueryRow(ctx, `SELECT `+connectionColumns+` FROM connections WHERE id = $1`, id))
	if err != nil {
		return storage.Connection{}, wrap(fmt.Sprintf("get connection %q", id), err)
	}
	return c, nil
}

// ListConnections returns the connections matching f, oldest first.
func (s *Store) ListConnections(ctx context.Context, f storage.ConnectionFilter) ([]storage.Connection, error) {
	var (
		where []string
		args  []any
	)
	add := func(column, value string) {
		if value != "" {
			args = append(args, value)
			where = append(where, column+" = $"+strconv.Itoa(len(args)))
		}
	}
	add("workspace_id", f.WorkspaceID)
	add("user_id", f.UserID)
	add("client_name", f.ClientName)
	add("provider_id", f.ProviderID)
	add("provider_name", f.ProviderName)
	add("status", string(f.Status))
	if len(f.AnyStatus) > 0 {
		var in []string
		for _, st := range f.AnyStatus {
			args = append(args, string(st))
			in = append(in, "$"+strconv.Itoa(len(args)))
		}
		where = append(where, "status IN ("+strings.Join(in, ", ")+")")
	}
	if f.After != nil {
		args = append(args, f.After.CreatedAt, f.After.ID)
		n := strconv.Itoa(len(args) - 1)
		where = append(where, "(created_at, id) > ($"+n+", $"+strconv.Itoa(len(args))+")")
	}
	q := `SELECT ` + connectionColumns + ` FROM connections`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limit(f.Limit))
	q += ` ORDER BY created_at, id LIMIT $` + strconv.Itoa(len(args))
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, wrap("list connections", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Connection, error) { return scanConnection(r) })
	if err != nil {
		return nil, wrap("list connections", err)
	}
	return cs, nil
}

// UpdateConnection locks the connection row with SELECT ... FOR UPDATE, so
// concurrent updates of one connection run one after the other, each seeing
// the previous one's result.
func (s *Store) UpdateConnection(ctx context.Context, id string, fn func(storage.Connection, *storage.Token) (storage.Connection, storage.TokenChange, error)) (storage.Connection, error) {
	var out storage.Connection
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = updateConnection(ctx, tx, id, fn)
		return err
	})
	if err != nil {
		return storage.Connection{}, err
	}
	return out, nil
}

// updateConnection is UpdateConnection inside the caller's transaction.
func updateConnection(ctx context.Context, tx pgx.Tx, id string, fn func(storage.Connection, *storage.Token) (storage.Connection, storage.TokenChange, error)) (storage.Connection, error) {
	op := fmt.Sprintf("update connection %q", id)
	cur, err := scanConnection(tx.QueryRow(ctx, `SELECT `+connectionColumns+` FROM connections WHERE id = $1 FOR UPDATE`, id))
	if err != nil {
		return storage.Connection{}, wrap(op, err)
	}
	return updateLockedConnection(ctx, tx, cur, fn)
}

// updateLockedConnection is updateConnection once the row cur was read
// from is locked.
func updateLockedConnection(ctx context.Context, tx pgx.Tx, cur storage.Connection, fn func(storage.Connection, *storage.Token) (storage.Connection, storage.TokenChange, error)) (storage.Connection, error) {
	id := cur.ID
	var out storage.Connection
	err := func() error {
		op := fmt.Sprintf("update connection %q", id)
		tok, err := getToken(ctx, tx, id)
		var current *storage.Token
		switch {
		case err == nil:
			current = &tok
		case !errors.Is(err, pgx.ErrNoRows):
			return wrap(op, err)
		}
		next, change, err := fn(cur, current)
		if err != nil {
			return err
		}
		next.ID, next.CreatedAt, next.Version = cur.ID, cur.CreatedAt, cur.Version+1
		metadata, err := encodeMeta(next.Metadata)
		if err != nil {
			return fmt.Errorf("postgres: %s: encode metadata: %w", op, err)
		}
		_, err = tx.Exec(ctx, `UPDATE connections SET workspace_id = $2, user_id = $3, client_name = $4,
    provider_id = $5, provider_name = $6, scopes = $7, return_url = $8, metadata = $9, status = $10,
    status_reason = $11, nonce = $12, pkce_verifier = $13, subject = $14, email = $15, issuer = $16,
    last_refresh_at = $17, next_refresh_at = $18, last_error_class = $19, refresh_lease_until = $20,
    refresh_lease_owner = $21, updated_at = $22, expires_at = $23, version = $24,
    confirm_url = $25, confirmation_hash = $26, confirmation_expires_at = $27, expected_identity = $28
WHERE id = $1`,
			id, next.WorkspaceID, next.UserID, next.ClientName, next.ProviderID, next.ProviderName,
			nonNil(next.Scopes), next.ReturnURL, metadata, string(next.Status), next.StatusReason, next.Nonce,
			nilIfEmpty(next.PKCEVerifier), next.Subject, next.Email, next.Issuer,
			nullTime(next.LastRefreshAt), nullTime(next.NextRefreshAt), next.LastErrorClass,
			nullTime(next.RefreshLeaseUntil), next.RefreshLeaseOwner,
			nullTime(next.UpdatedAt), nullTime(next.ExpiresAt), next.Version,
			next.ConfirmURL, next.ConfirmationHash, nullTime(next.ConfirmationExpiresAt), next.ExpectedIdentity)
		if err != nil {
			return wrap(op, err)
		}
		if err := applyTokenChange(ctx, tx, id, change); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		out, err = scanConnection(tx.QueryRow(ctx, `SELECT `+connectionColumns+` FROM connections WHERE id = $1`, id))
		if err != nil {
			return wrap(op, err)
		}
		if err := recordLifecycle(ctx, tx, &cur, &out); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil
	}()
	if err != nil {
		return storage.Connection{}, err
	}
	return out, nil
}

func applyTokenChange(ctx context.Context, tx pgx.Tx, id string, change storage.TokenChange) error {
	switch {
	case change.Put != nil:
		t := change.Put
		if t.ConnectionID != "" && t.ConnectionID != id {
			return errTokenMismatch
		}
		if len(t.Ciphertext) == 0 {
			return errEmptyCiphertext
		}
		_, err := tx.Exec(ctx, `INSERT INTO tokens (connection_id, ciphertext, aad_version, expires_at, expiry_source, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (connection_id) DO UPDATE SET ciphertext = EXCLUDED.ciphertext, aad_version = EXCLUDED.aad_version, expires_at = EXCLUDED.expires_at,
    expiry_source = EXCLUDED.expiry_source, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at`,
			id, t.Ciphertext, t.AADVersion, nullTime(t.ExpiresAt), t.ExpirySource, nullTime(t.CreatedAt), nullTime(t.UpdatedAt))
		if err != nil {
			return fmt.Errorf("put token: %w", err)
		}
	case change.Delete:
		if _, err := tx.Exec(ctx, `DELETE FROM tokens WHERE connection_id = $1`, id); err != nil {
			return fmt.Errorf("delete token: %w", err)
		}
	}
	return nil
}

// DeleteConnection locks the connection row, appends its
// connection.deleted event and removes it, in one transaction; its token
// goes by cascade.
func (s *Store) DeleteConnection(ctx context.Context, id string) error {
	op := fmt.Sprintf("delete connection %q", id)
	return s.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := scanConnection(tx.QueryRow(ctx, `SELECT `+connectionColumns+` FROM connections WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return wrap(op, err)
		}
		if err := recordLifecycle(ctx, tx, &cur, nil); err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		_, err = tx.Exec(ctx, `DELETE FROM connections WHERE id = $1`, id)
		return wrap(op, err)
	})
}

type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func getToken(ctx context.Context, q rowQuerier, id string) (storage.Token, error) {
	var (
		t                         storage.Token
		expires, created, updated pgtype.Timestamptz
	)
	err := q.QueryRow(ctx, `SELECT connection_id, ciphertext, aad_version, expires_at, expiry_source, created_at, updated_at
FROM tokens WHERE connection_id = $1`, id).Scan(&t.ConnectionID, &t.Ciphertext, &t.AADVersion, &expires, &t.ExpirySource, &created, &updated)
	if err != nil {
		return storage.Token{}, err
	}
	t.ExpiresAt = fromNullTime(expires)
	t.CreatedAt = fromNullTime(created)
	t.UpdatedAt = fromNullTime(updated)
	return t, nil
}

// GetToken returns the sealed token of the connection.
func (s *Store) GetToken(ctx context.Context, connectionID string) (storage.Token, error) {
	t, err := getToken(ctx, s.pool, connectionID)
	if err != nil {
		return storage.Token{}, wrap(fmt.Sprintf("get token of connection %q", connectionID), err)
	}
	return t, nil
}

// ListConnectionIDs pages through connection ids in ascending order.
func (s *Store) ListConnectionIDs(ctx context.Context, after string, n int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM connections WHERE id > $1 ORDER BY id LIMIT $2`, after, limit(n))
	if err != nil {
		return nil, wrap("list connection ids", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, wrap("list connection ids", err)
	}
	return ids, nil
}

// qualifiedConnectionColumns is connectionColumns with each column prefixed
// by the alias c, for joins with tokens (which shares some names).
var qualifiedConnectionColumns = func() string {
	parts := strings.Split(connectionColumns, ",")
	for i, p := range parts {
		parts[i] = "c." + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}()

// withExtra scans the columns after a connection's into extra.
type withExtra struct {
	row   pgx.Row
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.row.Scan(append(dest, w.extra...)...) }

// GetConnectionToken returns the connection and its token in one query.
func (s *Store) GetConnectionToken(ctx context.Context, id string) (storage.Connection, *storage.Token, error) {
	var (
		tokID                     pgtype.Text
		ciphertext                []byte
		aadVersion                pgtype.Int4
		source                    pgtype.Text
		expires, created, updated pgtype.Timestamptz
	)
	row := s.pool.QueryRow(ctx, `SELECT `+qualifiedConnectionColumns+`,
    t.connection_id, t.ciphertext, t.aad_version, t.expires_at, t.expiry_source, t.created_at, t.updated_at
FROM connections c LEFT JOIN tokens t ON t.connection_id = c.id WHERE c.id = $1`, id)
	c, err := scanConnection(withExtra{row, []any{&tokID, &ciphertext, &aadVersion, &expires, &source, &created, &updated}})
	if err != nil {
		return storage.Connection{}, nil, wrap(fmt.Sprintf("get connection and token %q", id), err)
	}
	if !tokID.Valid {
		return c, nil, nil
	}
	return c, &storage.Token{ConnectionID: tokID.String, Ciphertext: ciphertext, AADVersion: int(aadVersion.Int32), ExpiresAt: fromNullTime(expires),
		ExpirySource: source.String, CreatedAt: fromNullTime(created), UpdatedAt: fromNullTime(updated)}, nil
}

// ConnectionVersions reads the versions of the named connections by
// primary key.
func (s *Store) ConnectionVersions(ctx context.Context, ids []string) (map[string]int64, error) {
	out := make(map[string]int64, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, version FROM connections WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, wrap("connection versions", err)
	}
	var (
		id string
		v  int64
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &v}, func() error {
		out[id] = v
		return nil
	})
	if err != nil {
		return nil, wrap("connection versions", err)
	}
	return out, nil
}

// ConnectionOwners implements storage.Storage.
func (s *Store) ConnectionOwners(ctx context.Context, ids []string) (map[string]storage.ConnectionOwner, error) {
	out := make(map[string]storage.ConnectionOwner, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, client_name, provider_id FROM connections WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, wrap("connection owners", err)
	}
	var (
		id string
		o  storage.ConnectionOwner
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &o.ClientName, &o.ProviderID}, func() error {
		out[id] = o
		return nil
	})
	if err != nil {
		return nil, wrap("connection owners", err)
	}
	return out, nil
}
