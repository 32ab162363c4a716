package tracing

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Attribute keys (OpenTelemetry semantic conventions for HTTP).
const (
	attrMethod     = "http.request.method"
	attrRoute      = "http.route"
	attrStatus     = "http.response.status_code"
	attrServerAddr = "server.address"
	attrServerPort = "server.port"
	attrURLScheme  = "url.scheme"
	attrPeer       = "dromos.peer"
)

// Handler wraps h in a server span per request, continuing the caller's
// W3C traceparent. The span is named after the ServeMux pattern that
// served the request when h is one (the raw path is never recorded: the
// consent path carries a signed state, the callback's query a code).
// With tracing off it returns h itself.
func (t *Tracing) Handler(service string, h http.Handler) http.Handler {
	if !t.Enabled() {
		return h
	}
	tracer := t.Tracer()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String(attrMethod, r.Method), attribute.String("dromos.service", service)))
		defer span.End()
		rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		r = r.WithContext(ctx)
		h.ServeHTTP(rw, r)
		if r.Pattern != "" {
			span.SetName(r.Pattern)
			span.SetAttributes(attribute.String(attrRoute, r.Pattern))
		}
		span.SetAttributes(attribute.Int(attrStatus, rw.status))
		if rw.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(rw.status))
		}
	})
}

// statusWriter records the status code; Unwrap lets
// http.ResponseController reach the connection's own Flush and deadlines.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := w.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("tracing: response writer cannot hijack")
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Transport wraps rt in a client span per request and sends the span's
// W3C traceparent to peer (a name for the span: "broker", "provider").
// Only the method, host, port, scheme and status are recorded, never the
// path, query, headers or body. With tracing off it returns rt itself.
func (t *Tracing) Transport(peer string, rt http.RoundTripper) http.RoundTripper {
	if !t.Enabled() {
		return rt
	}
	if rt == nil {
		rt = http.DefaultTransport
	}
	return &transport{next: rt, tracer: t.Tracer(), prop: t.prop, peer: peer}
}

type transport struct {
	next   http.RoundTripper
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	peer   string
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	attrs := []attribute.KeyValue{
		attribute.String(attrMethod, req.Method),
		attribute.String(attrServerAddr, req.URL.Hostname()),
		attribute.String(attrURLScheme, req.URL.Scheme),
		attribute.String(attrPeer, tr.peer),
	}
	if p := req.URL.Port(); p != "" {
		if n, err := strconv.Atoi(p); err == nil {
			attrs = append(attrs, attribute.Int(attrServerPort, n))
		}
	}
	ctx, span := tr.tracer.Start(req.Context(), req.Method+" "+tr.peer,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	// A RoundTripper must not change the request it was given.
	out := req.Clone(ctx)
	tr.prop.Inject(ctx, propagation.HeaderCarrier(out.Header))
	resp, err := tr.next.RoundTrip(out)
	if err != nil {
		// Transport errors name the host and the failure, not the URL's
		// query (url.Error is unwrapped by the client, not here).
		span.SetStatus(codes.Error, "request failed")
		span.End()
		return nil, err
	}
	span.SetAttributes(attribute.Int(attrStatus, resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, http.StatusText(resp.StatusCode))
	}
	span.End()
	return resp, nil
}

// Start starts a span named name under ctx's span with tracer, or returns
// ctx unchanged and a span that records nothing when tracer is nil: the
// packages that take an optional tracer call this without checking, and
// may end what it returns.
func Start(ctx context.Context, tracer trace.Tracer, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if tracer == nil {
		// Not ctx's span: ending that would end the caller's.
		return ctx, trace.SpanFromContext(context.Background())
	}
	return tracer.Start(ctx, name, trace.WithAttributes(attrs...))
}
