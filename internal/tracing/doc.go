// Package tracing is Dromos's OpenTelemetry wiring: a tracer provider that
// exports spans over OTLP/HTTP when an endpoint is configured and is a
// no-op otherwise, an HTTP server middleware that continues a W3C
// traceparent, an HTTP client transport that sends one, and a pgx query
// tracer for database spans.
//
// What spans carry is chosen so that no token, code, state, key or secret
// can land in an attribute: methods, route patterns (never raw paths: the
// consent path holds a signed state), status codes, host names, SQL
// operation names (never statements' arguments). With tracing off the
// middleware and transport return what they wrap unchanged, so the token
// read path pays nothing.
//
// Configuration comes from the standard OTEL_* variables, read in
// internal/config into a Config.
package tracing
