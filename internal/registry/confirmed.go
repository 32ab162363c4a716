package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dromos-dev/dromos/internal/binding"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/storage"
)

// confirmedEndpoints are the endpoints discovery named when an operator
// last registered or updated the provider (storage.Provider.Endpoints).
// The client secret is sealed bound to them, and a later discovery answer
// that moves one to a host not among them is refused.
type confirmedEndpoints struct {
	Issuer     string `json:"issuer,omitempty"`
	Auth       string `json:"authorization_endpoint,omitempty"`
	Token      string `json:"token_endpoint,omitempty"`
	Revocation string `json:"revocation_endpoint,omitempty"`
	Userinfo   string `json:"userinfo_endpoint,omitempty"`
}

// decodeConfirmed reads stored confirmed endpoints; nil (none recorded,
// as for providers without discovery) is not an error.
func decodeConfirmed(b []byte) (*confirmedEndpoints, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var c confirmedEndpoints
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("decoding confirmed provider endpoints: %w", err)
	}
	return &c, nil
}

// hostKnown reports whether raw is on a host (origin) an operator
// confirmed for this provider.
func (c *confirmedEndpoints) hostKnown(raw string) bool {
	o := origin(raw)
	for _, u := range []string{c.Issuer, c.Auth, c.Token, c.Revocation, c.Userinfo} {
		if u != "" && origin(u) == o {
			return true
		}
	}
	return false
}

func confAuth(c *confirmedEndpoints) string {
	if c == nil {
		return ""
	}
	return c.Auth
}

func confToken(c *confirmedEndpoints) string {
	if c == nil {
		return ""
	}
	return c.Token
}

func confRevocation(c *confirmedEndpoints) string {
	if c == nil {
		return ""
	}
	return c.Revocation
}

func confUserinfo(c *confirmedEndpoints) string {
	if c == nil {
		return ""
	}
	return c.Userinfo
}

// confirm resolves prof's endpoints through discovery as they are now, for
// an operator's registration or update to record; nil for a provider
// without discovery (its endpoints are in the profile itself).
func (g *Registry) confirm(ctx context.Context, prof provider.Profile) ([]byte, error) {
	if !prof.EnableDiscovery {
		return nil, nil
	}
	e, err := g.Endpoints(ctx, Provider{Profile: prof})
	if err != nil {
		return nil, err
	}
	return json.Marshal(confirmedEndpoints{Issuer: e.Issuer, Auth: e.Auth, Token: e.Token, Revocation: e.Revocation, Userinfo: e.Userinfo})
}

// Rebind moves providers registered before the binding to it: it records
// their confirmed endpoints (discovery as it answers now) and seals their
// client secret again bound to them. Brokers run it at start and retry
// while it reports providers left (an issuer that did not answer); each
// provider is its own short transaction. Until then such a provider works
// as before, with its secret bound to its id only.
func (g *Registry) Rebind(ctx context.Context) (left int, err error) {
	rows, err := g.store.ListProviders(ctx)
	if err != nil {
		return 0, err
	}
	for _, r := range rows {
		if !needsRebind(r) {
			continue
		}
		p, err := decodeRow(r)
		if err != nil {
			left++
			continue
		}
		confirmed, err := g.confirm(ctx, p.Profile)
		if err != nil {
			g.log.WarnContext(ctx, "provider binding postponed: discovery failed", "provider_id", r.ID, "err", err)
			left++
			continue
		}
		_, err = g.store.UpdateProvider(ctx, r.ID, func(cur storage.Provider) (storage.Provider, error) {
			if !needsRebind(cur) || !bytes.Equal(cur.Config, r.Config) {
				return cur, errUnchanged
			}
			next, err := g.row(cur.ID, &p.Profile, confirmed, &cur)
			if err != nil {
				return storage.Provider{}, err
			}
			next.CreatedAt, next.UpdatedAt = cur.CreatedAt, cur.UpdatedAt
			return next, nil
		})
		switch {
		case err == nil, errors.Is(err, errUnchanged), errors.Is(err, storage.ErrNotFound):
		default:
			g.log.WarnContext(ctx, "provider binding failed", "provider_id", r.ID, "err", err)
			left++
		}
	}
	return left, nil
}

var errUnchanged = errors.New("provider changed meanwhile")

func needsRebind(r storage.Provider) bool {
	if len(r.ClientSecret) > 0 && r.SecretAADVersion != binding.Version {
		return true
	}
	p, err := provider.FromStoredConfig(r.Config)
	return err == nil && p.EnableDiscovery && len(r.Endpoints) == 0
}
