package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Redacted is what a secret attribute's value is replaced with.
const Redacted = "[REDACTED]"

// secretKeys are attribute keys (compared lower-case, '-' folded to '_')
// whose values are never written.
var secretKeys = map[string]bool{
	"access_token":  true,
	"refresh_token": true,
	"id_token":      true,
	"token":         true,
	"code":          true,
	"code_verifier": true,
	"verifier":      true,
	"client_secret": true,
	"secret":        true,
	"password":      true,
	"api_key":       true,
	"x_api_key":     true,
	"authorization": true,
	"cookie":        true,
	"set_cookie":    true,
	"state":         true,
	"raw_query":     true,
	"query":         true,
}

// IsSecretKey reports whether an attribute or header named key is redacted.
func IsSecretKey(key string) bool {
	k := strings.ToLower(strings.ReplaceAll(key, "-", "_"))
	return secretKeys[k]
}

// New returns a JSON logger writing to w at level, with redaction and
// request ids built in.
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if IsSecretKey(a.Key) {
				return slog.String(a.Key, Redacted)
			}
			return a
		},
	})
	return slog.New(contextHandler{h})
}

// Discard returns a logger that writes nothing (for tests and tools).
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

type ctxKey struct{}

// WithRequestID returns a context carrying id; records logged with that
// context get a request_id attribute.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// RequestID returns the request id in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	// The trace a record belongs to, when the request is traced, so logs
	// and spans can be joined.
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(as)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}
