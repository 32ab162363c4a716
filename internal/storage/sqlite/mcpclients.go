package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/dromos-dev/dromos/internal/storage"
)

const mcpClientSelect = `SELECT issuer, client_id, credentials, auth_method, source, created_at, updated_at FROM mcp_clients`

func scanMCPClient(row scanner) (storage.MCPClient, error) {
	var (
		c                storage.MCPClient
		creds            []byte
		created, updated sql.NullInt64
	)
	if err := row.Scan(&c.Issuer, &c.ClientID, &creds, &c.AuthMethod, &c.Source, &created, &updated); err != nil {
		return storage.MCPClient{}, err
	}
	c.Credentials = nilIfEmpty(creds)
	c.CreatedAt, c.UpdatedAt = fromNanos(created), fromNanos(updated)
	return c, nil
}

func checkMCPClient(c storage.MCPClient) error {
	if c.Issuer == "" || c.ClientID == "" {
		return fmt.Errorf("mcp client needs an issuer and a client id")
	}
	return checkTimes(c.CreatedAt, c.UpdatedAt)
}

// CreateMCPClient stores c; the issuer must not have a client yet.
func (s *Store) CreateMCPClient(ctx context.Context, c storage.MCPClient) error {
	op := fmt.Sprintf("create mcp client for %q", c.Issuer)
	if err := checkMCPClient(c); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	_, err := s.write.ExecContext(ctx, `INSERT INTO mcp_clients (issuer, client_id, credentials, auth_method, source, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?)`, c.Issuer, c.ClientID, blob(c.Credentials), c.AuthMethod, c.Source, nanos(c.CreatedAt), nanos(c.UpdatedAt))
	return wrap(op, err)
}

// PutMCPClient stores c, replacing the issuer's client (its creation time
// is kept).
func (s *Store) PutMCPClient(ctx context.Context, c storage.MCPClient) error {
	op := fmt.Sprintf("put mcp client for %q", c.Issuer)
	if err := checkMCPClient(c); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	_, err := s.write.ExecContext(ctx, `INSERT INTO mcp_clients (issuer, client_id, credentials, auth_method, source, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (issuer) DO UPDATE SET client_id = excluded.client_id, credentials = excluded.credentials,
    auth_method = excluded.auth_method, source = excluded.source, updated_at = excluded.updated_at`,
		c.Issuer, c.ClientID, blob(c.Credentials), c.AuthMethod, c.Source, nanos(c.CreatedAt), nanos(c.UpdatedAt))
	return wrap(op, err)
}

// GetMCPClient returns the issuer's client.
func (s *Store) GetMCPClient(ctx context.Context, issuer string) (storage.MCPClient, error) {
	c, err := scanMCPClient(s.read.QueryRowContext(ctx, mcpClientSelect+` WHERE issuer = ?`, issuer))
	return c, wrap(fmt.Sprintf("get mcp client for %q", issuer), err)
}

// ListMCPClients returns every client ordered by issuer.
func (s *Store) ListMCPClients(ctx context.Context) ([]storage.MCPClient, error) {
	rows, err := s.read.QueryContext(ctx, mcpClientSelect+` ORDER BY issuer`)
	if err != nil {
		return nil, wrap("list mcp clients", err)
	}
	defer rows.Close()
	var out []storage.MCPClient
	for rows.Next() {
		c, err := scanMCPClient(rows)
		if err != nil {
			return nil, wrap("list mcp clients", err)
		}
		out = append(out, c)
	}
	return out, wrap("list mcp clients", rows.Err())
}

// DeleteMCPClient removes the issuer's client.
func (s *Store) DeleteMCPClient(ctx context.Context, issuer string) error {
	op := fmt.Sprintf("delete mcp client for %q", issuer)
	res, err := s.write.ExecContext(ctx, `DELETE FROM mcp_clients WHERE issuer = ?`, issuer)
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
