package broker

import (
	"errors"
	"net/http"
	"net/netip"
	"time"

	"github.com/dromos-dev/dromos/internal/clientip"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/ratelimit"
	"github.com/dromos-dev/dromos/internal/returnurl"
)

// guards holds the request-facing protections built from Config.
type guards struct {
	ips      clientip.Resolver
	returns  returnurl.Policy
	callback *ratelimit.Limiter // per client IP on /auth/start and the callback
	consent  *ratelimit.Limiter // per client IP on consent creation
}

func newGuards(cfg Config, now func() time.Time) (*guards, error) {
	g := &guards{ips: clientip.Resolver{TrustedProxies: cfg.TrustedProxies}}
	if cfg.EnforceReturnURL {
		g.returns.AllowedDomains = cfg.AllowedReturnDomains
		g.returns.RequireHTTPS = true
		if err := g.returns.Validate(); err != nil {
			return nil, err
		}
	}
	var err error
	if cfg.CallbackRatePerMinute > 0 {
		if g.callback, err = ratelimit.New(float64(cfg.CallbackRatePerMinute)/60, cfg.CallbackRatePerMinute, ratelimit.Options{Now: now}); err != nil {
			return nil, err
		}
	}
	if cfg.ConsentRatePerMinute > 0 {
		if g.consent, err = ratelimit.New(float64(cfg.ConsentRatePerMinute)/60, cfg.ConsentRatePerMinute, ratelimit.Options{Now: now}); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// clientIP is the caller's address: the TCP peer, or the rightmost
// untrusted hop of X-Forwarded-For/Forwarded when the peer is one of
// TRUSTED_PROXIES. Never a header an arbitrary client can set.
func (b *Broker) clientIP(r *http.Request) netip.Addr { return b.guards.ips.ClientIP(r) }

// allowlisted judges REQUIRE_ALLOWLIST. Behind a trusted proxy the client
// must be identified from the forwarding headers; when they cannot be
// trusted the resolver falls back to the proxy itself, which is refused
// here so a forged header can never borrow the proxy's address.
func (b *Broker) allowlisted(r *http.Request) bool {
	ip := b.clientIP(r)
	if !ip.IsValid() {
		return false
	}
	if peer, err := netip.ParseAddrPort(r.RemoteAddr); err == nil && peer.Addr().Unmap() == ip.Unmap() {
		for _, p := range b.cfg.TrustedProxies {
			if p.Contains(ip.Unmap()) {
				return false
			}
		}
	}
	for _, p := range b.cfg.AllowedCIDRs {
		if p.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}

// limited applies a per-IP limiter; it writes the 429 and reports true
// when the request must stop.
func (b *Broker) limited(l *ratelimit.Limiter, w http.ResponseWriter, r *http.Request) bool {
	if l == nil {
		return false
	}
	ok, retry := l.Allow(ratelimit.AddrKey(b.clientIP(r)))
	if ok {
		return false
	}
	httpapi.WriteError(w, r, b.log, &httpapi.Error{Status: http.StatusTooManyRequests, Code: httpapi.CodeRateLimited,
		Message: "too many requests from this address; slow down", RetryAfter: retry})
	return true
}

// consentLimited applies RATE_LIMIT_CONSENT. A call made with a valid API
// key (or by the gateway in this process) on behalf of a named client (the gateway naming its agent) is counted
// per client name: agents behind one gateway share its address, and one of
// them must not use up the others' consents. Every other call is counted
// per address. It writes the 429 and reports true when the request must
// stop.
func (b *Broker) consentLimited(w http.ResponseWriter, r *http.Request, clientName string) bool {
	l := b.guards.consent
	if l == nil {
		return false
	}
	key := ratelimit.AddrKey(b.clientIP(r))
	msg := "too many consents from this address; slow down"
	if clientName != "" && (inProcess(r) || len(b.cfg.APIKeys) > 0 && b.keyAllowed(presentedKey(r))) {
		key, msg = "client:"+clientName, "too many consents for this client; slow down"
	}
	ok, retry := l.Allow(key)
	if ok {
		return false
	}
	httpapi.WriteError(w, r, b.log, &httpapi.Error{Status: http.StatusTooManyRequests, Code: httpapi.CodeRateLimited,
		Message: msg, RetryAfter: retry})
	return true
}

// checkReturnURL validates a return_url structurally and, with
// ENFORCE_RETURN_URL, against ALLOWED_RETURN_DOMAINS.
func (b *Broker) checkReturnURL(raw string) error {
	if _, err := b.guards.returns.Check(raw); err != nil {
		var re *returnurl.Error
		if errors.As(err, &re) {
			return httpapi.BadRequest("%s", re.Error())
		}
		return httpapi.BadRequest("return_url is not acceptable")
	}
	return nil
}
