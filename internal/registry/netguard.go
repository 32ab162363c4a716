package registry

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"time"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/netguard"
	"github.com/dromos-dev/dromos/internal/provider"
)

// checkEndpoints applies the production back-channel rules to a
// profile at registration: https only, and no host that resolves to a
// loopback, private, link-local or metadata address. The guarded transport
// checks again at every dial, so DNS rebinding gains nothing.
func (g *Registry) checkEndpoints(ctx context.Context, p *provider.Profile) error {
	if !g.netGuard {
		return checkMetadataLiterals(p)
	}
	for _, f := range []struct{ name, val string }{
		{"issuer", p.Issuer}, {"auth_url", p.AuthURL}, {"token_url", p.TokenURL},
		{"revocation_url", p.RevocationURL}, {"userinfo_url", p.UserinfoURL}, {"jwks_url", p.JWKSURL},
		{"resources_url", p.ResourcesURL},
	} {
		if f.val == "" {
			continue
		}
		if err := netguard.CheckURL(f.val, false); err != nil {
			return httpapi.BadRequest("%s must be an https URL of a public host", f.name)
		}
		u, _ := url.Parse(f.val)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := netguard.CheckHost(cctx, net.DefaultResolver, u.Hostname())
		cancel()
		if err != nil {
			if errors.Is(err, netguard.ErrBlocked) {
				return httpapi.BadRequest("%s points at a loopback, private, link-local or metadata address", f.name)
			}
			return httpapi.BadRequest("%s host does not resolve", f.name)
		}
	}
	return nil
}

// checkMetadataLiterals is the rule that holds outside production too: an
// endpoint written as a cloud-metadata or link-local IP address is refused
// at registration. Names that resolve there are refused by the outbound
// client's dial-time check.
func checkMetadataLiterals(p *provider.Profile) error {
	for _, f := range []struct{ name, val string }{
		{"issuer", p.Issuer}, {"auth_url", p.AuthURL}, {"token_url", p.TokenURL},
		{"revocation_url", p.RevocationURL}, {"userinfo_url", p.UserinfoURL}, {"jwks_url", p.JWKSURL},
		{"resources_url", p.ResourcesURL},
	} {
		u, err := url.Parse(f.val)
		if f.val == "" || err != nil {
			continue
		}
		a, err := netip.ParseAddr(u.Hostname())
		if err != nil {
			continue
		}
		if c := netguard.Classify(a, true); c != "" {
			return httpapi.BadRequest("%s points at a %s address", f.name, c)
		}
	}
	return nil
}
