package broker

import (
	"context"
	"time"

	"github.com/dromos-dev/dromos/internal/idtoken"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/refresh"
	"github.com/dromos-dev/dromos/internal/storage"
)

// refreshGrants gives the refresher what it needs of a registered
// provider: the token endpoint (discovered when the profile says so) with
// the opened client secret, and id_token verification when the provider
// has keys.
type refreshGrants struct{ b *Broker }

func (g refreshGrants) Grant(ctx context.Context, providerID string) (refresh.Grant, error) {
	b := g.b
	prov, err := b.providers.Lookup(ctx, providerID, "")
	if err != nil {
		return refresh.Grant{}, err
	}
	ends, err := b.providers.Endpoints(ctx, prov)
	if err != nil {
		return refresh.Grant{}, err
	}
	// A secret that does not open shows as invalid_client at the provider.
	secret, _ := b.providers.ClientSecret(prov)
	grant := refresh.Grant{Endpoint: prov.TokenEndpoint(ends, secret), Profile: prov.Profile, RevocationURL: ends.Revocation}
	if ends.Issuer != "" && ends.JWKS != "" {
		grant.VerifyIDToken = func(ctx context.Context, raw string) (string, string, error) {
			claims, err := b.idt.Verify(ctx, raw, idtoken.Expect{Issuer: ends.Issuer, ClientID: prov.Profile.ClientID, TrustedAudiences: prov.Profile.TrustedAudiences, JWKSURL: ends.JWKS})
			if err != nil {
				return "", "", err
			}
			return claims.Subject, claims.Issuer, nil
		}
	}
	return grant, nil
}

// idleLifetimes lists the providers whose refresh tokens lapse when idle
// (refresh_token_idle_lifetime_seconds), for the worker's keep-alive. It
// reads the stored profiles on every pass: a handful of rows, and a
// provider updated by another replica counts at once.
type idleLifetimes struct{ store storage.Storage }

func (l idleLifetimes) IdleLifetimes(ctx context.Context) (map[string]time.Duration, error) {
	rows, err := l.store.ListProviders(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]time.Duration{}
	for _, row := range rows {
		prof, err := provider.FromStoredConfig(row.Config)
		if err != nil || prof.RefreshTokenIdleLifetimeSeconds <= 0 {
			continue
		}
		out[row.ID] = time.Duration(prof.RefreshTokenIdleLifetimeSeconds) * time.Second
	}
	return out, nil
}
