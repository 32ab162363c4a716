package gateway

import (
	"context"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc/peer"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/ratelimit"
)

// admit applies the per-client rate limit (GATEWAY_RATE_LIMIT): one token
// bucket per agent, or per address for anonymous callers. nil when the
// request may go on.
func (g *Gateway) admit(c Caller, peerAddr string) error {
	if g.limiter == nil {
		return nil
	}
	if ok, retry := g.limiter.Allow(limitKey(c, peerAddr)); !ok {
		return &httpapi.Error{Status: http.StatusTooManyRequests, Code: httpapi.CodeRateLimited,
			Message: "too many requests for this agent; slow down", RetryAfter: retry}
	}
	return nil
}

// admitConsent applies the per-agent limit on connection requests
// (GATEWAY_CONSENT_RATE_LIMIT): each agent has its own bucket, so one agent
// asking for consents in a loop slows only itself.
func (g *Gateway) admitConsent(c Caller, peerAddr string) error {
	if g.consentLimiter == nil {
		return nil
	}
	if ok, retry := g.consentLimiter.Allow(limitKey(c, peerAddr)); !ok {
		return &httpapi.Error{Status: http.StatusTooManyRequests, Code: httpapi.CodeRateLimited,
			Message: "too many connection requests for this agent; slow down", RetryAfter: retry}
	}
	return nil
}

// limitKey is the bucket of a caller: its client name, or its address
// when anonymous.
func limitKey(c Caller, peerAddr string) string {
	if !c.Anonymous {
		return "client:" + c.Name
	}
	host, _, err := net.SplitHostPort(peerAddr)
	if err != nil {
		host = peerAddr
	}
	return "addr:" + host
}

func grpcPeer(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

func newLimiter(perSecond int, now func() time.Time) (*ratelimit.Limiter, error) {
	if perSecond <= 0 {
		return nil, nil
	}
	return ratelimit.New(float64(perSecond), 2*perSecond, ratelimit.Options{Now: now})
}

func newConsentLimiter(perMinute int, now func() time.Time) (*ratelimit.Limiter, error) {
	if perMinute <= 0 {
		return nil, nil
	}
	return ratelimit.New(float64(perMinute)/60, perMinute, ratelimit.Options{Now: now})
}
