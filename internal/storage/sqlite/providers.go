package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dromos-dev/dromos/internal/storage"
)

// providerSelect reads a provider with its aliases in one statement, so a
// concurrent alias update can never be seen half done.
const providerSelect = `SELECT p.id, p.name, p.config, p.client_secret, p.secret_aad_version, p.endpoints, p.created_at, p.updated_at,
    (SELECT json_group_array(a.alias) FROM provider_aliases a
     WHERE a.provider_id = p.id AND a.canonical = 0)
FROM providers p`

var errEmptyName = errors.New("provider name is empty")

type scanner interface {
	Scan(dest ...any) error
}

func scanProvider(row scanner) (storage.Provider, error) {
	var (
		p                storage.Provider
		config, secret   []byte
		endpoints        []byte
		created, updated sql.NullInt64
		aliases          sql.NullString
	)
	if err := row.Scan(&p.ID, &p.Name, &config, &secret, &p.SecretAADVersion, &endpoints, &created, &updated, &aliases); err != nil {
		return storage.Provider{}, err
	}
	var err error
	if p.Aliases, err = decodeList(aliases); err != nil {
		return storage.Provider{}, fmt.Errorf("decode aliases: %w", err)
	}
	// json_group_array does not promise any order.
	slices.Sort(p.Aliases)
	p.Config = nilIfEmpty(config)
	p.ClientSecret = nilIfEmpty(secret)
	p.Endpoints = nilIfEmpty(endpoints)
	p.CreatedAt = fromNanos(created)
	p.UpdatedAt = fromNanos(updated)
	return p, nil
}

// CreateProvider stores p with its name and aliases lower-cased.
func (s *Store) CreateProvider(ctx context.Context, p storage.Provider) error {
	op := fmt.Sprintf("create provider %q", p.ID)
	name, aliases := lookupNames(p)
	if name == "" {
		return fmt.Errorf("sqlite: %s: %w", op, errEmptyName)
	}
	if err := checkTimes(p.CreatedAt, p.UpdatedAt); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO providers (id, name, config, client_secret, secret_aad_version, endpoints, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, name, blob(p.Config), blob(p.ClientSecret), p.SecretAADVersion, blob(p.Endpoints), nanos(p.CreatedAt), nanos(p.UpdatedAt))
		if err != nil {
			return wrap(op, err)
		}
		return putNames(ctx, tx, p.ID, name, aliases)
	})
}

// putNames records name and aliases as the lookup names of provider id. The
// check gives a readable error; the primary key on provider_aliases backs it.
func putNames(ctx context.Context, tx *sql.Tx, id, name string, aliases []string) error {
	all := append([]string{name}, aliases...)
	for i, a := range all {
		var owner string
		err := tx.QueryRowContext(ctx, `SELECT provider_id FROM provider_aliases WHERE alias = ?`, a).Scan(&owner)
		switch {
		case err == nil:
			return fmt.Errorf("sqlite: provider %q: name %q: %w", id, a, storage.ErrAlreadyExists)
		case !errors.Is(err, sql.ErrNoRows):
			return wrap(fmt.Sprintf("check names of provider %q", id), err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO provider_aliases (alias, provider_id, canonical) VALUES (?, ?, ?)`, a, id, i == 0)
		if err != nil {
			return wrap(fmt.Sprintf("provider %q: name %q", id, a), err)
		}
	}
	return nil
}

// GetProvider returns the provider with that id.
func (s *Store) GetProvider(ctx context.Context, id string) (storage.Provider, error) {
	p, err := scanProvider(s.read.QueryRowContext(ctx, providerSelect+` WHERE p.id = ?`, id))
	if err != nil {
		return storage.Provider{}, wrap(fmt.Sprintf("get provider %q", id), err)
	}
	return p, nil
}

// GetProviderByName matches the canonical name or an alias, ignoring case.
func (s *Store) GetProviderByName(ctx context.Context, name string) (storage.Provider, error) {
	p, err := scanProvider(s.read.QueryRowContext(ctx, providerSelect+`
JOIN provider_aliases n ON n.provider_id = p.id WHERE n.alias = ?`, strings.ToLower(name)))
	if err != nil {
		return storage.Provider{}, wrap(fmt.Sprintf("get provider by name %q", name), err)
	}
	return p, nil
}

// ListProviders returns every provider ordered by name (byte order).
func (s *Store) ListProviders(ctx context.Context) ([]storage.Provider, error) {
	rows, err := s.read.QueryContext(ctx, providerSelect+` ORDER BY p.name`)
	if err != nil {
		return nil, wrap("list providers", err)
	}
	defer rows.Close()
	var ps []storage.Provider
	for rows.Next() {
		p, err := scanProvider(rows)
		if err != nil {
			return nil, wrap("list providers", err)
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list providers", err)
	}
	return ps, nil
}

// UpdateProvider passes the current provider to fn inside an IMMEDIATE
// transaction and stores what fn returns, aliases replaced. ID and CreatedAt
// are kept.
func (s *Store) UpdateProvider(ctx context.Context, id string, fn func(storage.Provider) (storage.Provider, error)) (storage.Provider, error) {
	op := fmt.Sprintf("update provider %q", id)
	var out storage.Provider
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := scanProvider(tx.QueryRowContext(ctx, providerSelect+` WHERE p.id = ?`, id))
		if err != nil {
			return wrap(op, err)
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		name, aliases := lookupNames(next)
		if name == "" {
			return fmt.Errorf("sqlite: %s: %w", op, errEmptyName)
		}
		if err := checkTimes(next.UpdatedAt); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		// Old names go first so that a provider may move a name between its
		// canonical name and its aliases.
		if _, err := tx.ExecContext(ctx, `DELETE FROM provider_aliases WHERE provider_id = ?`, id); err != nil {
			return wrap(op, err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE providers SET name = ?, config = ?, client_secret = ?, secret_aad_version = ?, endpoints = ?,
    updated_at = ? WHERE id = ?`,
			name, blob(next.Config), blob(next.ClientSecret), next.SecretAADVersion, blob(next.Endpoints), nanos(next.UpdatedAt), id)
		if err != nil {
			return wrap(op, err)
		}
		if err := putNames(ctx, tx, id, name, aliases); err != nil {
			return err
		}
		out, err = scanProvider(tx.QueryRowContext(ctx, providerSelect+` WHERE p.id = ?`, id))
		return wrap(op, err)
	})
	if err != nil {
		return storage.Provider{}, err
	}
	return out, nil
}

// DeleteProvider removes the provider; its lookup names go with it by
// cascade. Connections keep their dangling provider_id.
func (s *Store) DeleteProvider(ctx context.Context, id string) error {
	return deleteByID(ctx, s.write, "providers", id, fmt.Sprintf("delete provider %q", id))
}
