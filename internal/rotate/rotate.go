package rotate

import (
	"context"
	"errors"
	"fmt"

	"github.com/dromos-dev/dromos/internal/binding"
	"github.com/dromos-dev/dromos/internal/devicepoll"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
	"github.com/dromos-dev/dromos/internal/vault"
	"github.com/dromos-dev/dromos/internal/webhook/endpoint"
)

// Store is the part of storage.Store rotation uses.
type Store interface {
	ListProviders(ctx context.Context) ([]storage.Provider, error)
	UpdateProvider(ctx context.Context, id string, fn func(storage.Provider) (storage.Provider, error)) (storage.Provider, error)
	ListConnectionIDs(ctx context.Context, after string, limit int) ([]string, error)
	GetConnectionToken(ctx context.Context, id string) (storage.Connection, *storage.Token, error)
	UpdateConnection(ctx context.Context, id string, fn func(storage.Connection, *storage.Token) (storage.Connection, storage.TokenChange, error)) (storage.Connection, error)
	ListWebhookEndpoints(ctx context.Context, f storage.WebhookEndpointFilter) ([]storage.WebhookEndpoint, error)
	UpdateWebhookEndpoint(ctx context.Context, id string, fn func(storage.WebhookEndpoint) (storage.WebhookEndpoint, error)) (storage.WebhookEndpoint, error)
	GetDeviceGrant(ctx context.Context, connectionID string) (storage.DeviceGrant, error)
	UpdateDeviceGrant(ctx context.Context, connectionID string, fn func(storage.DeviceGrant) (storage.DeviceGrant, error)) (storage.DeviceGrant, error)
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
	Webhooks               int // webhook endpoints looked at
	Resealed               int // ciphertexts moved to the primary key
	Rebound                int // tokens moved from the legacy additional data to the owner binding
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

// Keys re-seals every ciphertext (client secrets, webhook secrets, PKCE
// verifiers, tokens, device codes) that is not under the primary encryption key. It runs online:
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
			// The secret keeps the additional data it has: moving a legacy
			// one to the current binding needs the provider's confirmed
			// endpoints, which the broker records at start.
			aad, err := binding.SecretAADFor(cur)
			if err != nil {
				return cur, fmt.Errorf("provider %s: %w", cur.ID, err)
			}
			ct, err := reseal(cur.ClientSecret, aad)
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

	if err := resealWebhooks(ctx, store, old, reseal, &st); err != nil {
		return st, err
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
			n, rebound, err := resealConnection(ctx, store, kr, id, old)
			if row, ok := unopened(err); ok {
				st.Unopened = append(st.Unopened, row)
				continue
			}
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return st, err
			}
			st.Resealed += n
			if rebound {
				st.Rebound++
			}
			n, err = resealDeviceGrant(ctx, store, id, old, reseal)
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

// resealWebhooks moves webhook endpoint secrets (current and previous)
// to the primary key, one endpoint per transaction.
func resealWebhooks(ctx context.Context, store Store, old func([]byte) bool, reseal func(ct, aad []byte) ([]byte, error), st *Stats) error {
	eps, err := store.ListWebhookEndpoints(ctx, storage.WebhookEndpointFilter{AnyOwner: true})
	if err != nil {
		return err
	}
	for _, e := range eps {
		st.Webhooks++
		if !old(e.Secret) && !old(e.PreviousSecret) {
			continue
		}
		n := 0
		_, err := store.UpdateWebhookEndpoint(ctx, e.ID, func(cur storage.WebhookEndpoint) (storage.WebhookEndpoint, error) {
			n = 0
			for _, ct := range []*[]byte{&cur.Secret, &cur.PreviousSecret} {
				if !old(*ct) {
					continue
				}
				fresh, err := reseal(*ct, endpoint.SecretAAD(cur.ID))
				if err != nil {
					return cur, &unopenedError{row: "webhook endpoint " + cur.ID, err: err}
				}
				*ct = fresh
				n++
			}
			return cur, nil
		})
		if row, ok := unopened(err); ok {
			st.Unopened = append(st.Unopened, row)
			continue
		}
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		st.Resealed += n
	}
	return nil
}

var errNothingToReseal = errors.New("nothing to re-seal")

// resealDeviceGrant moves the sealed device code of a pending device
// connection (RFC 8628) to the primary key; a connection without a grant
// is ErrNotFound.
func resealDeviceGrant(ctx context.Context, store Store, id string, old func([]byte) bool, reseal func(ct, aad []byte) ([]byte, error)) (int, error) {
	g, err := store.GetDeviceGrant(ctx, id)
	if err != nil || !old(g.DeviceCode) {
		return 0, err
	}
	n := 0
	_, err = store.UpdateDeviceGrant(ctx, id, func(cur storage.DeviceGrant) (storage.DeviceGrant, error) {
		n = 0
		if !old(cur.DeviceCode) {
			return cur, nil
		}
		ct, err := reseal(cur.DeviceCode, devicepoll.CodeAAD(cur.ConnectionID))
		if err != nil {
			return cur, &unopenedError{row: "device grant " + cur.ConnectionID, err: err}
		}
		cur.DeviceCode = ct
		n = 1
		return cur, nil
	})
	return n, err
}

func resealConnection(ctx context.Context, store Store, kr Keyring, id string, old func([]byte) bool) (int, bool, error) {
	n, rebound := 0, false
	_, err := store.UpdateConnection(ctx, id, func(c storage.Connection, tok *storage.Token) (storage.Connection, storage.TokenChange, error) {
		n, rebound = 0, false
		var change storage.TokenChange
		if old(c.PKCEVerifier) {
			plain, err := kr.Open(c.PKCEVerifier, tokenset.VerifierAAD(c.ID))
			if err != nil {
				return c, change, &unopenedError{row: "connection " + c.ID, err: fmt.Errorf("verifier: %w", err)}
			}
			if c.PKCEVerifier, err = kr.Seal(plain, tokenset.VerifierAAD(c.ID)); err != nil {
				return c, change, err
			}
			n++
		}
		// A token on an old key or with the legacy additional data is
		// sealed again under the primary key, bound to its owner.
		if tok != nil && (old(tok.Ciphertext) || tok.AADVersion != tokenset.AADVersion) {
			aad, ok := tokenset.AADFor(c, tok.AADVersion)
			if !ok {
				return c, change, &unopenedError{row: "connection " + c.ID, err: fmt.Errorf("token: unknown additional-data version %d", tok.AADVersion)}
			}
			plain, err := kr.Open(tok.Ciphertext, aad)
			if err != nil {
				return c, change, &unopenedError{row: "connection " + c.ID, err: fmt.Errorf("token: %w", err)}
			}
			t := *tok
			if t.Ciphertext, err = kr.Seal(plain, tokenset.OwnerAAD(c)); err != nil {
				return c, change, err
			}
			if old(tok.Ciphertext) {
				n++
			}
			rebound = tok.AADVersion != tokenset.AADVersion
			t.AADVersion = tokenset.AADVersion
			change.Put = &t
		}
		if n == 0 && !rebound {
			// Nothing to do: skip the write (and the version bump), so a
			// resumed pass does not disturb fenced refreshes.
			return c, change, errNothingToReseal
		}
		return c, change, nil
	})
	if errors.Is(err, errNothingToReseal) {
		return 0, false, nil
	}
	return n, rebound, err
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
	eps, err := store.ListWebhookEndpoints(ctx, storage.WebhookEndpointFilter{AnyOwner: true})
	if err != nil {
		return 0, err
	}
	for _, e := range eps {
		old(e.Secret)
		old(e.PreviousSecret)
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
			if c.Status == storage.StatusPending {
				// A pending device connection's sealed device code.
				g, err := store.GetDeviceGrant(ctx, id)
				if err != nil && !errors.Is(err, storage.ErrNotFound) {
					return count, err
				}
				old(g.DeviceCode)
			}
		}
		after = ids[len(ids)-1]
	}
}
