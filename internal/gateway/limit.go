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
	key := "client:" + c.Name
	if c.Anonymous {
		host, _, err := net.SplitHostPort(peerAddr)
		if err != nil {
			host = peerAddr
		}
		key = "addr:" + host
	}
	if ok, retry := g.limiter.Allow(key); !ok {
		return &httpapi.Error{Status: http.StatusTooManyRequests, Code: httpapi.CodeRateLimited,
			Message: "too many requests for this agent; slow down", RetryAfter: retry}
	}
	return nil
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
