package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dromos-dev/dromos/internal/storage"
)

const mcpClientSelect = `SELECT issuer, client_id, credentials, auth_method, source, created_at, updated_at FROM mcp_clients`

func scanMCPClient(row pgx.Row) (storage.MCPClient, error) {
	var c storage.MCPClient
	var created, updated time.Time
	if err := row.Scan(&c.Issuer, &c.ClientID, &c.Credentials, &c.AuthMethod, &c.Source, &created, &updated); err != nil {
		return storage.MCPClient{}, err
	}
	c.Credentials = nilIfEmpty(c.Credentials)
	c.CreatedAt, c.UpdatedAt = created.UTC(), updated.UTC()
	return c, nil
}

func checkMCPClient(c storage.MCPClient) error {
	if c.Issuer == "" || c.ClientID == "" {
		return fmt.Errorf("mcp client needs an issuer and a client id")
	}
	return nil
}

// CreateMCPClient stores c; the issuer must not have a client yet.
func (s *Store) CreateMCPClient(ctx context.Context, c storage.MCPClient) error {
	op := fmt.Sprintf("create mcp client for %q", c.Issuer)
	if err := checkMCPClient(c); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO mcp_clients (issuer, client_id, credentials, auth_method, source, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)`, c.Issuer, c.ClientID, nilIfEmpty(c.Credentials), c.AuthMethod, c.Source, c.CreatedAt, c.UpdatedAt)
	return wrap(op, err)
}

// PutMCPClient stores c, replacing the issuer's client (its creation time
// is kept).
func (s *Store) PutMCPClient(ctx context.Context, c storage.MCPClient) error {
	op := fmt.Sprintf("put mcp client for %q", c.Issuer)
	if err := checkMCPClient(c); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO mcp_clients (issuer, client_id, credentials, auth_method, source, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (issuer) DO UPDATE SET client_id = EXCLUDED.client_id, credentials = EXCLUDED.credentials,
    auth_method = EXCLUDED.auth_method, source = EXCLUDED.source, updated_at = EXCLUDED.updated_at`,
		c.Issuer, c.ClientID, nilIfEmpty(c.Credentials), c.AuthMethod, c.Source, c.CreatedAt, c.UpdatedAt)
	return wrap(op, err)
}

// GetMCPClient returns the issuer's client.
func (s *Store) GetMCPClient(ctx context.Context, issuer string) (storage.MCPClient, error) {
	c, err := scanMCPClient(s.pool.QueryRow(ctx, mcpClientSelect+` WHERE issuer = $1`, issuer))
	return c, wrap(fmt.Sprintf("get mcp client for %q", issuer), err)
}

// ListMCPClients returns every client ordered by issuer (byte order).
func (s *Store) ListMCPClients(ctx context.Context) ([]storage.MCPClient, error) {
	rows, err := s.pool.Query(ctx, mcpClientSelect+` ORDER BY issuer COLLATE "C"`)
	if err != nil {
		return nil, wrap("list mcp clients", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.MCPClient, error) { return scanMCPClient(r) })
	return cs, wrap("list mcp clients", err)
}

// DeleteMCPClient removes the issuer's client.
func (s *Store) DeleteMCPClient(ctx context.Context, issuer string) error {
	op := fmt.Sprintf("delete mcp client for %q", issuer)
	tag, err := s.pool.Exec(ctx, `DELETE FROM mcp_clients WHERE issuer = $1`, issuer)
	if err != nil {
		return wrap(op, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: %s: %w", op, storage.ErrNotFound)
	}
	return nil
}
