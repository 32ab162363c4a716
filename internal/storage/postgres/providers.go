package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dromos-dev/dromos/internal/storage"
)

// providerSelect reads a provider with its aliases in one statement, so a
// concurrent alias update can never be seen half done.
const providerSelect = `SELECT p.id, p.name, p.config, p.client_secret, p.secret_aad_version, p.endpoints, p.created_at, p.updated_at,
    ARRAY(SELECT a.alias FROM provider_aliases a
          WHERE a.provider_id = p.id AND NOT a.canonical
          ORDER BY a.alias COLLATE "C")
FROM providers p`

var errEmptyName = errors.New("provider name is empty")

func scanProvider(row pgx.Row) (storage.Provider, error) {
	var (
		p                storage.Provider
		created, updated pgtype.Timestamptz
		config, secret   []byte
		endpoints        []byte
		aliases          []string
	)
	if err := row.Scan(&p.ID, &p.Name, &config, &secret, &p.SecretAADVersion, &endpoints, &created, &updated, &aliases); err != nil {
		return storage.Provider{}, err
	}
	p.Config = nilIfEmpty(config)
	p.ClientSecret = nilIfEmpty(secret)
	p.Endpoints = nilIfEmpty(endpoints)
	p.CreatedAt = fromNullTime(created)
	p.UpdatedAt = fromNullTime(updated)
	p.Aliases = nilIfNone(aliases)
	return p, nil
}

// CreateProvider stores p with its name and aliases lower-cased.
func (s *Store) CreateProvider(ctx context.Context, p storage.Provider) error {
	name, aliases := lookupNames(p)
	if name == "" {
		return fmt.Errorf("postgres: create provider %q: %w", p.ID, errEmptyName)
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO providers (id, name, config, client_secret, secret_aad_version, endpoints, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			p.ID, name, nilIfEmpty(p.Config), nilIfEmpty(p.ClientSecret), p.SecretAADVersion, nilIfEmpty(p.Endpoints),
			nullTime(p.CreatedAt), nullTime(p.UpdatedAt))
		if err != nil {
			return wrap(fmt.Sprintf("create provider %q", p.ID), err)
		}
		return putNames(ctx, tx, p.ID, name, aliases)
	})
}

// putNames records name and aliases as the lookup names of provider id. The
// check gives a readable error; the primary key on provider_aliases is what
// holds under concurrency.
func putNames(ctx context.Context, tx pgx.Tx, id, name string, aliases []string) error {
	all := append([]string{name}, aliases...)
	var taken string
	err := tx.QueryRow(ctx, `SELECT alias FROM provider_aliases
WHERE alias = ANY($1) AND provider_id <> $2 ORDER BY alias LIMIT 1`, all, id).Scan(&taken)
	switch {
	case err == nil:
		return fmt.Errorf("postgres: provider %q: name %q: %w", id, taken, storage.ErrAlreadyExists)
	case !errors.Is(err, pgx.ErrNoRows):
		return wrap(fmt.Sprintf("check names of provider %q", id), err)
	}
	for i, a := range all {
		_, err := tx.Exec(ctx, `INSERT INTO provider_aliases (alias, provider_id, canonical) VALUES ($1, $2, $3)`, a, id, i == 0)
		if err != nil {
			return wrap(fmt.Sprintf("provider %q: name %q", id, a), err)
		}
	}
	return nil
}

// GetProvider returns the provider with that id.
func (s *Store) GetProvider(ctx context.Context, id string) (storage.Provider, error) {
	p, err := scanProvider(s.pool.QueryRow(ctx, providerSelect+` WHERE p.id = $1`, id))
	if err != nil {
		return storage.Provider{}, wrap(fmt.Sprintf("get provider %q", id), err)
	}
	return p, nil
}

// GetProviderByName matches the canonical name or an alias, ignoring case.
func (s *Store) GetProviderByName(ctx context.Context, name string) (storage.Provider, error) {
	p, err := scanProvider(s.pool.QueryRow(ctx, providerSelect+`
JOIN provider_aliases n ON n.provider_id = p.id WHERE n.alias = $1`, strings.ToLower(name)))
	if err != nil {
		return storage.Provider{}, wrap(fmt.Sprintf("get provider by name %q", name), err)
	}
	return p, nil
}

// ListProviders returns every provider ordered by name (byte order).
func (s *Store) ListProviders(ctx context.Context) ([]storage.Provider, error) {
	rows, err := s.pool.Query(ctx, providerSelect+` ORDER BY p.name COLLATE "C"`)
	if err != nil {
		return nil, wrap("list providers", err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Provider, error) { return scanProvider(r) })
	if err != nil {
		return nil, wrap("list providers", err)
	}
	return ps, nil
}

// UpdateProvider locks the provider row, passes the current provider to fn
// and stores what fn returns, aliases replaced. ID and CreatedAt are kept.
func (s *Store) UpdateProvider(ctx context.Context, id string, fn func(storage.Provider) (storage.Provider, error)) (storage.Provider, error) {
	var out storage.Provider
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := scanProvider(tx.QueryRow(ctx, providerSelect+` WHERE p.id = $1 FOR UPDATE OF p`, id))
		if err != nil {
			return wrap(fmt.Sprintf("update provider %q", id), err)
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		next.ID, next.CreatedAt = cur.ID, cur.CreatedAt
		name, aliases := lookupNames(next)
		if name == "" {
			return fmt.Errorf("postgres: update provider %q: %w", id, errEmptyName)
		}
		next.Name, next.Aliases = name, aliases
		// Old names go first so that a provider may move a name between its
		// canonical name and its aliases.
		if _, err := tx.Exec(ctx, `DELETE FROM provider_aliases WHERE provider_id = $1`, id); err != nil {
			return wrap(fmt.Sprintf("update provider %q", id), err)
		}
		_, err = tx.Exec(ctx, `UPDATE providers SET name = $2, config = $3, client_secret = $4, secret_aad_version = $5,
    endpoints = $6, updated_at = $7 WHERE id = $1`,
			id, name, nilIfEmpty(next.Config), nilIfEmpty(next.ClientSecret), next.SecretAADVersion,
			nilIfEmpty(next.Endpoints), nullTime(next.UpdatedAt))
		if err != nil {
			return wrap(fmt.Sprintf("update provider %q", id), err)
		}
		if err := putNames(ctx, tx, id, name, aliases); err != nil {
			return err
		}
		out, err = scanProvider(tx.QueryRow(ctx, providerSelect+` WHERE p.id = $1`, id))
		return wrap(fmt.Sprintf("update provider %q", id), err)
	})
	if err != nil {
		return storage.Provider{}, err
	}
	return out, nil
}

// DeleteProvider removes the provider; its lookup names go with it by
// cascade. Connections keep their dangling provider_id.
func (s *Store) DeleteProvider(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM providers WHERE id = $1`, id)
	if err != nil {
		return wrap(fmt.Sprintf("delete provider %q", id), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: delete provider %q: %w", id, storage.ErrNotFound)
	}
	return nil
}
