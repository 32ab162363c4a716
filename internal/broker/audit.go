package broker

import (
	"context"
	"net"
	"net/http"

	"github.com/dromos-dev/dromos/internal/storage"
)

// audit appends an event; a failure is logged, not returned, because the
// operation it records has already happened. Callers never put tokens,
// codes, verifiers or secrets in Detail.
func (b *Broker) audit(r *http.Request, e storage.AuditEvent) {
	e.Time = b.now().UTC()
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		e.ClientIP = host
	}
	if ua := r.UserAgent(); len(ua) > 256 {
		e.UserAgent = ua[:256]
	} else {
		e.UserAgent = ua
	}
	if e.Actor == "" {
		e.Actor = r.URL.Query().Get("client_name")
	}
	// The request may be finished (callback redirect written); the audit
	// row must still land.
	ctx := context.WithoutCancel(r.Context())
	if err := b.store.AppendAudit(ctx, e); err != nil {
		b.log.WarnContext(ctx, "audit append failed", "type", e.Type, "connection_id", e.ConnectionID, "err", err)
	}
}
