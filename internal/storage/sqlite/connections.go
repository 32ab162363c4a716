package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

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

func scanConnection(row scanner) (storage.Connection, error) {
	var (
		c                         storage.Connection
		status                    string
		scopes, metadata          sql.NullString
		verifier                  []byte
		lastRefresh, nextRefresh  sql.NullInt64
		leaseUntil                sql.NullInt64
		created, updated, expires sql.NullInt64
		confirmExpires            sql.NullInt64
	)
	err := row.Scan(&c.ID, &c.WorkspaceID, &c.UserID, &c.ClientName, &c.ProviderID, &c.ProviderName,
		&scopes, &c.ReturnURL, &metadata, &status, &c.StatusReason, &c.Nonce, &verifier,
		&c.Subject, &c.Email, &c.Issuer, &lastRefresh, &nextRefresh, &c.LastErrorClass,
		&leaseUntil, &c.RefreshLeaseOwner, &created, &updated, &expires, &c.Version,
		&c.ConfirmURL, &c.ConfirmationHash, &confirmExpires, &c.ExpectedIdentity)
	if err != nil {
		return storage.Connection{}, err
	}
	if c.Scopes, err = decodeList(scopes); err != nil {
		return storage.Connection{}, fmt.Errorf("decode scopes: %w", err)
	}
	if c.Metadata, err = decodeMeta(metadata); err != nil {
		return storage.Connection{}, fmt.Errorf("decode metadata: %w", err)
	}
	c.Status = storage.ConnectionStatus(status)
	c.PKCEVerifier = nilIfEmpty(verifier)
	c.LastRefreshAt = fromNanos(lastRefresh)
	c.NextRefreshAt = fromNanos(nextRefresh)
	c.RefreshLeaseUntil = fromNanos(leaseUntil)
	c.CreatedAt = fromNanos(created)
	c.UpdatedAt = fromNanos(updated)
	c.ExpiresAt = fromNanos(expires)
	c.ConfirmationExpiresAt = fromNanos(confirmExpires)
	return c, nil
}

// connectionArgs returns the column values of c in connectionColumns order.
func connectionArgs(c storage.Connection) ([]any, error) {
	if err := checkTimes(c.LastRefreshAt, c.NextRefreshAt, c.RefreshLeaseUntil, c.CreatedAt, c.UpdatedAt, c.ExpiresAt, c.ConfirmationExpiresAt); err != nil {
		return nil, err
	}
	scopes, err := encodeList(c.Scopes)
	if err != nil {
		return nil, fmt.Errorf("encode scopes: %w", err)
	}
	metadata, err := encodeMeta(c.Metadata)
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	return []any{c.ID, c.WorkspaceID, c.UserID, c.ClientName, c.ProviderID, c.ProviderName,
		scopes, c.ReturnURL, metadata, string(c.Status), c.StatusReason, c.Nonce, blob(c.PKCEVerifier),
		c.Subject, c.Email, c.Issuer, nanos(c.LastRefreshAt), nanos(c.NextRefreshAt), c.LastErrorClass,
		nanos(c.RefreshLeaseUntil), c.RefreshLeaseOwner, nanos(c.CreatedAt), nanos(c.UpdatedAt), nanos(c.ExpiresAt), c.Version,
		c.ConfirmURL, c.ConfirmationHash, nanos(c.ConfirmationExpiresAt), c.ExpectedIdentity}, nil
}

// CreateConnection stores c with Version 1.
func (s *Store) CreateConnection(ctx context.Context, c storage.Connection) error {
	return insertConnection(ctx, s.write, c, fmt.Sprintf("create connection %q", c.ID))
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insertConnection inserts c with Version 1.
func insertConnection(ctx context.Context, q execer, c storage.Connection, op string) error {
	c.Version = 1
	args, err := connectionArgs(c)
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	_, err = q.ExecContext(ctx, `INSERT INTO connections (`+connectionColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	return wrap(op, err)
}

// CreatePendingConnection counts and inserts in one IMMEDIATE transaction
// on the single writer, so no other write comes between them.
func (s *Store) CreatePendingConnection(ctx context.Context, c storage.Connection, maxPending int) error {
	op := fmt.Sprintf("create pending connection %q", c.ID)
	if err := checkTimes(c.CreatedAt); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error { return insertPending(ctx, tx, c, maxPending, op) })
}

// insertPending counts the client's pending connections and inserts c
// when there is room (always when maxPending <= 0); the caller's
// IMMEDIATE transaction keeps other writers out in between.
func insertPending(ctx context.Context, tx *sql.Tx, c storage.Connection, maxPending int, op string) error {
	if maxPending > 0 {
		var n int
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM connections
WHERE client_name = ? AND status = 'pending' AND expires_at > ?`, c.ClientName, nanos(c.CreatedAt)).Scan(&n)
		if err != nil {
			return wrap(op, err)
		}
		if n >= maxPending {
			return fmt.Errorf("sqlite: %s: %w (%d pending)", op, storage.ErrLimitReached, n)
		}
	}
	return insertConnection(ctx, tx, c, op)
}

// PurgeConnections deletes failed, never-active connections, purgeBatch
// rows per statement (the writer is shared with callbacks and refreshes);
// tokens go by cascade.
func (s *Store) PurgeConnections(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		res, err := s.write.ExecContext(ctx, `DELETE FROM connections WHERE id IN
(SELECT id FROM connections WHERE status = 'failed' AND activated_at IS NULL AND updated_at < ?
 ORDER BY updated_at LIMIT ?)`, nanos(before), pruneBatch)
		if err != nil {
			return total, wrap("purge connections", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, wrap("purge connections", err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}

// GetConnection returns the connection with that id.
func (s *Store) GetConnection(ctx context.Context, id string) (storage.Connection, error) {
	c, err := scanConnection(s.read.QueryRowContext(ctx, `SELECT `+connectionColumns+` FROM connections WHERE id = ?`, id))
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
			where = append(where, column+" = ?")
			args = append(args, value)
		}
	}
	add("workspace_id", f.WorkspaceID)
	add("user_id", f.UserID)
	add("client_name", f.ClientName)
	add("provider_id", f.ProviderID)
	add("provider_name", f.ProviderName)
	add("status", string(f.Status))
	if len(f.AnyStatus) > 0 {
		where = append(where, "status IN (?"+strings.Repeat(", ?", len(f.AnyStatus)-1)+")")
		for _, st := range f.AnyStatus {
			args = append(args, string(st))
		}
	}
	if f.After != nil {
		where = append(where, "(created_at > ? OR (created_at = ? AND id > ?))")
		at := nanos(f.After.CreatedAt)
		args = append(args, at, at, f.After.ID)
	}
	q := `SELECT ` + connectionColumns + ` FROM connections`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at, id LIMIT ?`
	args = append(args, limit(f.Limit))
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, wrap("list connections", err)
	}
	defer rows.Close()
	var cs []storage.Connection
	for rows.Next() {
		c, err := scanConnection(rows)
		if err != nil {
			return nil, wrap("list connections", err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list connections", err)
	}
	return cs, nil
}

// UpdateConnection runs the read-check-write in an IMMEDIATE transaction on
// the single writer connection, so concurrent updates of one connection run
// one after the other, each seeing the previous one's result.
func (s *Store) UpdateConnection(ctx context.Context, id string, fn func(storage.Connection, *storage.Token) (storage.Connection, storage.TokenChange, error)) (storage.Connection, error) {
	var out storage.Connection
	err := s.inTx(ctx, func(tx *sql.Tx) error {
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
func updateConnection(ctx context.Context, tx *sql.Tx, id string, fn func(storage.Connection, *storage.Token) (storage.Connection, storage.TokenChange, error)) (storage.Connection, error) {
	cur, err := scanConnection(tx.QueryRowContext(ctx, `SELECT `+connectionColumns+` FROM connections WHERE id = ?`, id))
	if err != nil {
		return storage.Connection{}, wrap(fmt.Sprintf("update connection %q", id), err)
	}
	return updateReadConnection(ctx, tx, cur, fn)
}

// updateReadConnection is updateConnection once cur was read in the write
// transaction.
func updateReadConnection(ctx context.Context, tx *sql.Tx, cur storage.Connection, fn func(storage.Connection, *storage.Token) (storage.Connection, storage.TokenChange, error)) (storage.Connection, error) {
	id := cur.ID
	op := fmt.Sprintf("update connection %q", id)
	var out storage.Connection
	err := func() error {
		tok, err := getToken(ctx, tx, id)
		var current *storage.Token
		switch {
		case err == nil:
			current = &tok
		case !errors.Is(err, sql.ErrNoRows):
			return wrap(op, err)
		}
		next, change, err := fn(cur, current)
		if err != nil {
			return err
		}
		next.ID, next.CreatedAt, next.Version = cur.ID, cur.CreatedAt, cur.Version+1
		args, err := connectionArgs(next)
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE connections SET (`+connectionColumns+`) =
(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) WHERE id = ?`, append(args, id)...)
		if err != nil {
			return wrap(op, err)
		}
		if err := applyTokenChange(ctx, tx, id, change); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		out, err = scanConnection(tx.QueryRowContext(ctx, `SELECT `+connectionColumns+` FROM connections WHERE id = ?`, id))
		if err != nil {
			return wrap(op, err)
		}
		if err := recordLifecycle(ctx, tx, &cur, &out); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		return nil
	}()
	if err != nil {
		return storage.Connection{}, err
	}
	return out, nil
}

func applyTokenChange(ctx context.Context, tx *sql.Tx, id string, change storage.TokenChange) error {
	switch {
	case change.Put != nil:
		t := change.Put
		if t.ConnectionID != "" && t.ConnectionID != id {
			return errTokenMismatch
		}
		if len(t.Ciphertext) == 0 {
			return errEmptyCiphertext
		}
		if err := checkTimes(t.ExpiresAt, t.CreatedAt, t.UpdatedAt); err != nil {
			return fmt.Errorf("put token: %w", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO tokens (connection_id, ciphertext, aad_version, expires_at, expiry_source, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (connection_id) DO UPDATE SET ciphertext = excluded.ciphertext, aad_version = excluded.aad_version, expires_at = excluded.expires_at,
    expiry_source = excluded.expiry_source, created_at = excluded.created_at, updated_at = excluded.updated_at`,
			id, t.Ciphertext, t.AADVersion, nanos(t.ExpiresAt), t.ExpirySource, nanos(t.CreatedAt), nanos(t.UpdatedAt))
		if err != nil {
			return fmt.Errorf("put token: %w", err)
		}
	case change.Delete:
		if _, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE connection_id = ?`, id); err != nil {
			return fmt.Errorf("delete token: %w", err)
		}
	}
	return nil
}

// DeleteConnection appends the connection's connection.deleted event and
// removes it in one transaction; its token goes by cascade.
func (s *Store) DeleteConnection(ctx context.Context, id string) error {
	op := fmt.Sprintf("delete connection %q", id)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := scanConnection(tx.QueryRowContext(ctx, `SELECT `+connectionColumns+` FROM connections WHERE id = ?`, id))
		if err != nil {
			return wrap(op, err)
		}
		if err := recordLifecycle(ctx, tx, &cur, nil); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM connections WHERE id = ?`, id)
		return wrap(op, err)
	})
}

type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getToken(ctx context.Context, q rowQuerier, id string) (storage.Token, error) {
	var (
		t                         storage.Token
		expires, created, updated sql.NullInt64
	)
	err := q.QueryRowContext(ctx, `SELECT connection_id, ciphertext, aad_version, expires_at, expiry_source, created_at, updated_at
FROM tokens WHERE connection_id = ?`, id).Scan(&t.ConnectionID, &t.Ciphertext, &t.AADVersion, &expires, &t.ExpirySource, &created, &updated)
	if err != nil {
		return storage.Token{}, err
	}
	t.ExpiresAt = fromNanos(expires)
	t.CreatedAt = fromNanos(created)
	t.UpdatedAt = fromNanos(updated)
	return t, nil
}

// GetToken returns the sealed token of the connection.
func (s *Store) GetToken(ctx context.Context, connectionID string) (storage.Token, error) {
	t, err := getToken(ctx, s.read, connectionID)
	if err != nil {
		return storage.Token{}, wrap(fmt.Sprintf("get token of connection %q", connectionID), err)
	}
	return t, nil
}

// ListConnectionIDs pages through connection ids in ascending order.
func (s *Store) ListConnectionIDs(ctx context.Context, after string, n int) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id FROM connections WHERE id > ? ORDER BY id LIMIT ?`, after, limit(n))
	if err != nil {
		return nil, wrap("list connection ids", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, wrap("list connection ids", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
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
	row   scanner
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.row.Scan(append(dest, w.extra...)...) }

// getConnectionTokenSQL is GetConnectionToken's query, prepared in Open.
var getConnectionTokenSQL = `SELECT ` + qualifiedConnectionColumns + `,
    t.connection_id, t.ciphertext, t.aad_version, t.expires_at, t.expiry_source, t.created_at, t.updated_at
FROM connections c LEFT JOIN tokens t ON t.connection_id = c.id WHERE c.id = ?`

// GetConnectionToken returns the connection and its token in one query.
func (s *Store) GetConnectionToken(ctx context.Context, id string) (storage.Connection, *storage.Token, error) {
	var (
		tokID, source             sql.NullString
		ciphertext                []byte
		aadVersion                sql.NullInt64
		expires, created, updated sql.NullInt64
	)
	row := s.tokenRead.QueryRowContext(ctx, id)
	c, err := scanConnection(withExtra{row, []any{&tokID, &ciphertext, &aadVersion, &expires, &source, &created, &updated}})
	if err != nil {
		return storage.Connection{}, nil, wrap(fmt.Sprintf("get connection and token %q", id), err)
	}
	if !tokID.Valid {
		return c, nil, nil
	}
	return c, &storage.Token{ConnectionID: tokID.String, Ciphertext: ciphertext, AADVersion: int(aadVersion.Int64), ExpiresAt: fromNanos(expires),
		ExpirySource: source.String, CreatedAt: fromNanos(created), UpdatedAt: fromNanos(updated)}, nil
}

// ConnectionVersions reads the versions of the named connections by
// primary key, the ids passed as one JSON array.
func (s *Store) ConnectionVersions(ctx context.Context, ids []string) (map[string]int64, error) {
	out := make(map[string]int64, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("sqlite: connection versions: %w", err)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT id, version FROM connections WHERE id IN (SELECT value FROM json_each(?))`, string(list))
	if err != nil {
		return nil, wrap("connection versions", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id string
			v  int64
		)
		if err := rows.Scan(&id, &v); err != nil {
			return nil, wrap("connection versions", err)
		}
		out[id] = v
	}
	if err := rows.Err(); err != nil {
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
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("sqlite: connection owners: %w", err)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT id, client_name, provider_id FROM connections WHERE id IN (SELECT value FROM json_each(?))`, string(list))
	if err != nil {
		return nil, wrap("connection owners", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id string
			o  storage.ConnectionOwner
		)
		if err := rows.Scan(&id, &o.ClientName, &o.ProviderID); err != nil {
			return nil, wrap("connection owners", err)
		}
		out[id] = o
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("connection owners", err)
	}
	return out, nil
}
