package rotate

import (
	"context"
	"errors"
	"fmt"

	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
	"github.com/dromos-dev/dromos/internal/vault"
)

// Store is the part of storage.Store rotation uses.
type Store interface {
	ListProviders(ctx context.Context) ([]storage.Provider, error)
	UpdateProvider(ctx context.Context, id string, fn func(storage.Provider) (storage.Provider, error)) (storage.Provider, error)
	ListConnectionIDs(ctx context.Context, after string, limit int) ([]string, error)
	GetConnectionToken(ctx context.Context, id string) (storage.Connection, *storage.Token, error)
	UpdateConnection(ctx context.Context, id string, fn func(storage.Connection, *storage.Token) (storage.Connection, storage.TokenChange, error)) (storage.Connection, error)
}

// Keyring is the vault's key ring.
type Keyring interface {
	PrimaryID() byte
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(ciphertext, aad []byte) ([]byte, error)
}

// Stats counts what a rotation pass found and re-sealed.
type Stats struct {
	Providers, Connections int // rows looked at
	Resealed               int // ciphertexts moved to the primary key
	OnOldKeys              int // ciphertexts still on another key afterwards (should be 0)
	// Unopened names the rows ("provider ID", "connection ID") holding a
	// ciphertext no key of the ring opens (a key missing from the list, a
	// row edited in the database). The pass goes on past them; they stay
	// on their old key and count in OnOldKeys.
	Unopened []string
}

// unopenedError marks a ciphertext the key ring could not open, as
// opposed to a storage failure, which stops the pass.
type unopenedError struct {
	row string
	err error
}

func (e *unopenedError) Error() string { return e.row + ": " + e.err.Error() }
func (e *unopenedError) Unwrap() error { return e.err }

// unopened returns the row named by err when err is a ciphertext that
// could not be opened.
func unopened(err error) (string, bool) {
	var ue *unopenedError
	if errors.As(err, &ue) {
		return ue.row, true
	}
	return "", false
}

// Keys re-seals every ciphertext (client secrets, PKCE verifiers,
// tokens) that is not under the primary encryption key. It runs online:
// each row is rewritten in its own short transaction, concurrently with
// traffic, and a pass can be interrupted and run again (rows already on the
// primary key are skipped). A row holding a ciphertext no key opens is
// named in Stats.Unopened and the pass goes on; a storage failure stops it.
// progress, if set, is called after each batch.
func Keys(ctx context.Context, store Store, kr Keyring, batch int, progress func(Stats)) (Stats, error) {
	if batch <= 0 {
		batch = 200
	}
	var st Stats
	primary := kr.PrimaryID()
	old := func(ct []byte) bool {
		if len(ct) == 0 {
			return false
		}
		id, err := vault.KeyID(ct)
		return err == nil && id != primary
	}
	reseal := func(ct, aad []byte) ([]byte, error) {
		plain, err := kr.Open(ct, aad)
		if err != nil {
			return nil, err
		}
		return kr.Seal(plain, aad)
	}

	provs, err := store.ListProviders(ctx)
	if err != nil {
		return st, err
	}
	for _, p := range provs {
		st.Providers++
		if !old(p.ClientSecret) {
			continue
		}
		_, err := store.UpdateProvider(ctx, p.ID, func(cur storage.Provider) (storage.Provider, error) {
			if !old(cur.ClientSecret) {
				return cur, nil
			}
			ct, err := reseal(cur.ClientSecret, tokenset.ClientSecretAAD(cur.ID))
			if err != nil {
				return cur, &unopenedError{row: "provider " + cur.ID, err: err}
			}
			cur.ClientSecret = ct
			st.Resealed++
			return cur, nil
		})
		if row, ok := unopened(err); ok {
			st.Unopened = append(st.Unopened, row)
			continue
		}
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return st, err
		}
	}

	after := ""
	for {
		ids, err := store.ListConnectionIDs(ctx, after, batch)
		if err != nil {
			return st, err
		}
		if len(ids) == 0 {
			break
		}
		for _, id := range ids {
			st.Connections++
			n, err := resealConnection(ctx, store, id, old, reseal)
			if row, ok := unopened(err); ok {
				st.Unopened = append(st.Unopened, row)
				continue
			}
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return st, err
			}
			st.Resealed += n
		}
		after = ids[len(ids)-1]
		if progress != nil {
			progress(st)
		}
	}
	left, err := Usage(ctx, store, kr)
	st.OnOldKeys = left
	return st, err
}

var errNothingToReseal = errors.New("nothing to re-seal")

func resealConnection(ctx context.Context, store Store, id string, old func([]byte) bool, reseal func(ct, aad []byte) ([]byte, error)) (int, error) {
	n := 0
	_, err := store.UpdateConnection(ctx, id, func(c storage.Connection, tok *storage.Token) (storage.Connection, storage.TokenChange, error) {
		n = 0
		var change storage.TokenChange
		if old(c.PKCEVerifier) {
			ct, err := reseal(c.PKCEVerifier, tokenset.VerifierAAD(c.ID))
			if err != nil {
				return c, change, &unopenedError{row: "connection " + c.ID, err: fmt.Errorf("verifier: %w", err)}
			}
			c.PKCEVerifier = ct
			n++
		}
		if tok != nil && old(tok.Ciphertext) {
			ct, err := reseal(tok.Ciphertext, tokenset.AAD(c.ID))
			if err != nil {
				return c, change, &unopenedError{row: "connection " + c.ID, err: fmt.Errorf("token: %w", err)}
			}
			t := *tok
			t.Ciphertext = ct
			change.Put = &t
			n++
		}
		if n == 0 {
			// Nothing to do: skip the write (and the version bump), so a
			// resumed pass does not disturb fenced refreshes.
			return c, change, errNothingToReseal
		}
		return c, change, nil
	})
	if errors.Is(err, errNothingToReseal) {
		return 0, nil
	}
	return n, err
}

// Usage counts ciphertexts not under the primary key (for the metric and
// for `dromos rotate-keys --check`).
func Usage(ctx context.Context, store Store, kr Keyring) (int, error) {
	primary := kr.PrimaryID()
	count := 0
	old := func(ct []byte) {
		if len(ct) == 0 {
			return
		}
		if id, err := vault.KeyID(ct); err == nil && id != primary {
			count++
		}
	}
	provs, err := store.ListProviders(ctx)
	if err != nil {
		return 0, err
	}
	for _, p := range provs {
		old(p.ClientSecret)
	}
	after := ""
	for {
		ids, err := store.ListConnectionIDs(ctx, after, 500)
		if err != nil || len(ids) == 0 {
			return count, err
		}
		for _, id := range ids {
			// One query per connection for both of its ciphertexts. A row
			// deleted meanwhile holds nothing; any other error must fail
			// the count: an operator removes the old key when it says 0.
			c, t, err := store.GetConnectionToken(ctx, id)
			if errors.Is(err, storage.ErrNotFound) {
				continue
			}
			if err != nil {
				return count, err
			}
			old(c.PKCEVerifier)
			if t != nil {
				old(t.Ciphertext)
			}
		}
		after = ids[len(ids)-1]
	}
}
