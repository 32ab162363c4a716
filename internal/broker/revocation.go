package broker

import (
	"context"
	"errors"

	"github.com/dromos-dev/dromos/internal/revocation"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
)

// revocationTarget tells package revocation where a provider revokes.
func (b *Broker) revocationTarget(ctx context.Context, providerID string) (revocation.Target, error) {
	if _, err := b.store.GetProvider(ctx, providerID); errors.Is(err, storage.ErrNotFound) {
		return revocation.Target{}, revocation.ErrNoProvider
	} else if err != nil {
		return revocation.Target{}, err
	}
	prov, err := b.providers.Lookup(ctx, providerID, "")
	if err != nil {
		return revocation.Target{}, err
	}
	ends, err := b.providers.Endpoints(ctx, prov)
	if err != nil {
		return revocation.Target{}, err
	}
	if ends.Revocation == "" {
		return revocation.Target{}, nil
	}
	secret, err := b.providers.ClientSecret(prov)
	if err != nil {
		return revocation.Target{}, err
	}
	return revocation.Target{URL: ends.Revocation, Endpoint: prov.TokenEndpoint(ends, secret)}, nil
}

// auditRevocation records a revocation's end from the background worker.
func (b *Broker) auditRevocation(ctx context.Context, e storage.AuditEvent) {
	if err := b.store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		b.log.WarnContext(ctx, "audit append failed", "type", e.Type, "connection_id", e.ConnectionID, "err", err)
	}
}

// RevokeTokens revokes a grant the broker does not keep, retrying later
// when the provider fails: the one way to revoke a token set.
func (b *Broker) RevokeTokens(ctx context.Context, connID, providerID, refreshToken, accessToken string) (revocation.Outcome, error) {
	return b.revoker.Revoke(ctx, connID, providerID, revocation.Tokens{RefreshToken: refreshToken, AccessToken: accessToken})
}

// revokeAtProvider revokes the grant of a token row the broker erased
// (a refused or lapsed confirmation) and returns what became of it: "yes",
// "pending" (kept and retried), "no" or "failed".
func (b *Broker) revokeAtProvider(ctx context.Context, c storage.Connection, row *storage.Token) string {
	if row == nil {
		return string(revocation.NotRevoked)
	}
	set, err := tokenset.Open(b.vault, c, *row)
	if err != nil {
		return string(revocation.NotRevoked)
	}
	out, err := b.revoker.Revoke(ctx, c.ID, c.ProviderID, revocation.Tokens{RefreshToken: set.RefreshToken, AccessToken: set.AccessToken})
	if err != nil {
		b.log.WarnContext(ctx, "revocation at provider not kept for retry", "connection_id", c.ID, "err", err)
		return string(revocation.Failed)
	}
	return string(out)
}
