package tracing

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Attribute keys (OpenTelemetry semantic conventions for RPC).
const (
	attrRPCSystem  = "rpc.system"
	attrRPCService = "rpc.service"
	attrRPCMethod  = "rpc.method"
	attrGRPCStatus = "rpc.grpc.status_code"
)

// GRPCServerOptions are the options that give a gRPC server a server span
// per call, continuing the caller's W3C traceparent sent as gRPC metadata,
// as Handler does for HTTP. The span is named after the full method
// ("/dromos.v1.Gateway/GetToken") and records the service, method and
// status code, never the request, the response or any metadata value
// (the caller's bearer key travels there). With tracing off it returns
// nil, so the server pays nothing.
func (t *Tracing) GRPCServerOptions(service string) []grpc.ServerOption {
	if !t.Enabled() {
		return nil
	}
	tracer, prop := t.Tracer(), t.prop
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			ctx = prop.Extract(ctx, mdCarrier(md))
		}
		rpcService, method := splitMethod(info.FullMethod)
		ctx, span := tracer.Start(ctx, info.FullMethod, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String(attrRPCSystem, "grpc"),
				attribute.String(attrRPCService, rpcService),
				attribute.String(attrRPCMethod, method),
				attribute.String("dromos.service", service)))
		defer span.End()
		resp, err := handler(ctx, req)
		code := status.Code(err)
		span.SetAttributes(attribute.Int(attrGRPCStatus, int(code)))
		if serverFault(code) {
			// The code's name only: a status message may quote input.
			span.SetStatus(codes.Error, code.String())
		}
		return resp, err
	}
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(unary)}
}

// serverFault reports whether code means the server failed (the
// semantic conventions' rule for server spans), not the caller.
func serverFault(c grpccodes.Code) bool {
	switch c {
	case grpccodes.Unknown, grpccodes.DeadlineExceeded, grpccodes.Unimplemented, grpccodes.Internal,
		grpccodes.Unavailable, grpccodes.DataLoss:
		return true
	}
	return false
}

// splitMethod splits "/pkg.Service/Method" into its service and method.
func splitMethod(full string) (service, method string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "", full
}

// mdCarrier reads the propagation headers out of incoming gRPC metadata
// (keys are lower-case there, as traceparent is).
type mdCarrier metadata.MD

var _ propagation.TextMapCarrier = mdCarrier(nil)

func (c mdCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set is never called: the server only extracts.
func (c mdCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c mdCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
