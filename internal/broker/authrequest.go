package broker

import (
	"context"

	"github.com/dromos-dev/dromos/internal/authreq"
	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/registry"
)

// providerAuthURL is the provider URL a browser is sent to for req: the
// request in the URL, or pushed first when the provider or the profile
// wants pushed authorization requests (package authreq).
func (b *Broker) providerAuthURL(ctx context.Context, prov registry.Provider, ends registry.Endpoints, req provider.AuthRequest) (string, error) {
	return authreq.URL(ctx, b.xchg, &prov.Profile, authreq.Target{Auth: ends.Auth, PAR: ends.PAR, RequirePAR: ends.RequirePAR},
		func() (exchange.Endpoint, error) {
			secret, err := b.providers.ClientSecret(prov)
			if err != nil {
				return exchange.Endpoint{}, err
			}
			return prov.TokenEndpoint(ends, secret), nil
		}, req)
}
