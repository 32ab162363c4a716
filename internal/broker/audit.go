package broker

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dromos-dev/dromos/internal/httpapi"

	"github.com/dromos-dev/dromos/internal/storage"
)

// audit appends an event; a failure is logged, not returned, because the
// operation it records has already happened. Callers never put tokens,
// codes, verifiers or secrets in Detail.
func (b *Broker) audit(r *http.Request, e storage.AuditEvent) {
	b.auditQuery(r, nil, e)
}

// auditPublic records an event of a public route (/auth/start, the
// callback). Its actor is only what e says: the query there is the
// browser's, and a client_name in it proves nothing.
func (b *Broker) auditPublic(r *http.Request, e storage.AuditEvent) {
	b.auditQuery(r, url.Values{}, e)
}

// auditQuery is audit with the request's query already parsed (nil: parse
// it here when needed).
func (b *Broker) auditQuery(r *http.Request, q url.Values, e storage.AuditEvent) {
	e.Time = b.now().UTC()
	if ip := b.clientIP(r); ip.IsValid() {
		e.ClientIP = ip.Unmap().String()
	}
	e.UserAgent = storableText(r.UserAgent(), 256)
	if e.Actor == "" {
		if q == nil {
			q = r.URL.Query()
		}
		e.Actor = q.Get("client_name")
	}
	e.Actor = storableText(e.Actor, 256)
	for k, v := range e.Detail {
		if sk, sv := storableText(k, 256), storableText(v, 1024); sk != k || sv != v {
			delete(e.Detail, k)
			e.Detail[sk] = sv
		}
	}
	if e.Type == "token.read" {
		b.auditq.Add(e)
		return
	}
	// The request may be finished (callback redirect written); the audit
	// row must still land.
	ctx := context.WithoutCancel(r.Context())
	if err := b.store.AppendAudit(ctx, e); err != nil {
		b.log.WarnContext(ctx, "audit append failed", "type", e.Type, "connection_id", e.ConnectionID, "err", err)
	}
}

type auditView struct {
	ID           int64             `json:"id"`
	Time         time.Time         `json:"time"`
	Type         string            `json:"type"`
	ConnectionID string            `json:"connection_id,omitempty"`
	ProviderID   string            `json:"provider_id,omitempty"`
	Actor        string            `json:"actor,omitempty"`
	ClientIP     string            `json:"client_ip,omitempty"`
	UserAgent    string            `json:"user_agent,omitempty"`
	Detail       map[string]string `json:"detail,omitempty"`
}

// listAudit is GET /audit?connection_id=&since=&limit=: newest first.
func (b *Broker) listAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := storage.AuditFilter{ConnectionID: q.Get("connection_id"), Limit: 100}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return httpapi.BadRequest("since must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
		}
		f.Since = t
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return httpapi.BadRequest("limit must be a number from 1 to 1000")
		}
		f.Limit = n
	}
	events, err := b.store.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]auditView, len(events))
	for i, e := range events {
		out[i] = auditView(e)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"events": out})
	return nil
}

// pruneAudit applies the retention setting.
func (b *Broker) pruneAudit(ctx context.Context) {
	if b.cfg.AuditRetention <= 0 {
		return
	}
	n, err := b.store.PruneAudit(ctx, b.now().Add(-b.cfg.AuditRetention))
	if err != nil {
		b.log.WarnContext(ctx, "audit prune failed", "err", err)
		return
	}
	if n > 0 {
		b.log.InfoContext(ctx, "audit events pruned", "count", n)
	}
}

// purgeConnections applies CONNECTION_RETENTION: connections that failed
// before ever being active are deleted, and one audit event says how many.
func (b *Broker) purgeConnections(ctx context.Context) {
	if _, err := b.PurgeConnections(ctx); err != nil && ctx.Err() == nil {
		b.log.WarnContext(ctx, "connection purge failed", "err", err)
	}
}

// PurgeConnections runs one retention pass and returns how many
// connections it deleted. With a zero ConnectionRetention it does nothing.
func (b *Broker) PurgeConnections(ctx context.Context) (int64, error) {
	if b.cfg.ConnectionRetention <= 0 {
		return 0, nil
	}
	before := b.now().Add(-b.cfg.ConnectionRetention)
	n, err := b.store.PurgeConnections(ctx, before)
	if n > 0 {
		// Even a pass that stopped half-way deleted these rows: say so.
		e := storage.AuditEvent{Time: b.now().UTC(), Type: "connections.purged", Actor: "retention",
			Detail: map[string]string{"count": strconv.FormatInt(n, 10), "retention": b.cfg.ConnectionRetention.String(),
				"before": before.UTC().Format(time.RFC3339)}}
		if aerr := b.store.AppendAudit(context.WithoutCancel(ctx), e); aerr != nil {
			b.log.WarnContext(ctx, "audit append failed", "type", e.Type, "err", aerr)
		}
		b.log.InfoContext(ctx, "connections purged", "count", n, "retention", b.cfg.ConnectionRetention.String())
	}
	return n, err
}

// FlushAudit writes every queued audit event now, and the rejected
// callbacks counted so far (tests, shutdown).
func (b *Broker) FlushAudit() {
	b.auditq.Flush()
	b.rejections.Flush(context.Background())
}

// FlushReads writes the pending last-read marks now (tests, benchmarks).
func (b *Broker) FlushReads() { b.reads.Flush() }

// Close writes the queued audit events, rejected callbacks and last-read
// marks and stops their writers. Call it before closing the store.
func (b *Broker) Close() {
	b.auditq.Close()
	b.rejections.Close()
	b.reads.Close()
}

// storableText is s as every store keeps it: valid UTF-8 (PostgreSQL
// refuses anything else, and one refused row would sink the batch it is
// in), without control characters, at most max bytes cut on a character
// boundary. Header and query values are whatever a client sent.
func storableText(s string, max int) string {
	plain := len(s) <= max
	for i := 0; plain && i < len(s); i++ {
		plain = s[i] >= 0x20 && s[i] < 0x7f
	}
	if plain {
		return s
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}
