package broker

import (
	"context"
	"errors"

	"github.com/dromos-dev/dromos/internal/revocation"
	"github.com/dromos-dev/dromos/internal/storage"
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
