package tracing

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// QueryTracer returns a pgx tracer that records one client span per query
// run inside a traced request (queries of background work with no span in
// their context record nothing). A span holds the SQL operation (SELECT,
// UPDATE…), never the statement's arguments. Nil when tracing is off, so
// pgx calls no tracer at all.
func (t *Tracing) QueryTracer() pgx.QueryTracer {
	if !t.Enabled() {
		return nil
	}
	return &queryTracer{tracer: t.Tracer()}
}

type queryTracer struct{ tracer trace.Tracer }

type querySpanKey struct{}

func (q *queryTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	op := operation(data.SQL)
	ctx, span := q.tracer.Start(ctx, "db "+op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system.name", "postgresql"), attribute.String("db.operation.name", op)))
	return context.WithValue(ctx, querySpanKey{}, span)
}

func (q *queryTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	span, ok := ctx.Value(querySpanKey{}).(trace.Span)
	if !ok {
		return
	}
	if data.Err != nil {
		// Driver errors can quote values: only the fact is recorded.
		span.SetStatus(codes.Error, "query failed")
	}
	span.End()
}

// operation is the statement's first keyword, upper-cased ("WITH" for a
// CTE), or "QUERY".
func operation(sql string) string {
	f := strings.Fields(sql)
	for _, w := range f {
		if strings.HasPrefix(w, "--") {
			continue
		}
		w = strings.ToUpper(strings.TrimLeft(w, "("))
		if w != "" && strings.IndexFunc(w, func(r rune) bool { return r < 'A' || r > 'Z' }) < 0 {
			return w
		}
		break
	}
	return "QUERY"
}
