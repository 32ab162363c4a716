package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/dromos-dev/dromos/internal/logging"
)

// RequestIDHeader carries the request id between Dromos services.
const RequestIDHeader = "X-Request-Id"

// GatewayHeader marks a broker call the gateway makes on an agent's behalf.
// The broker serves such a call only with an owner (client_name), so a
// gateway can never read or create connections for nobody in particular.
const GatewayHeader = "X-Dromos-Gateway"

// validRequestID accepts ids a peer may pass in: short and plain, so a header
// cannot inject anything into logs.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusRecorder remembers the status written.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Observer is told about each finished request (for metrics). route is the
// matched pattern, never the raw path.
type Observer func(route string, status int, elapsed time.Duration)

// Middleware wraps h with request ids (kept from X-Request-Id when sane,
// else generated, and echoed in the answer), panic recovery, an access log
// line without query strings, and an optional observer.
func Middleware(h http.Handler, log *slog.Logger, now func() time.Time, observe Observer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := now()
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		r = r.WithContext(logging.WithRequestID(r.Context(), id))
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.ErrorContext(r.Context(), "panic serving request", "route", r.Pattern, "panic", p)
				if rec.status == 0 {
					WriteError(rec, r, log, &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"})
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			elapsed := now().Sub(start)
			if observe != nil {
				observe(route, status, elapsed)
			}
			// A traced request's server span (internal/tracing) is named
			// after the pattern, which only this request knows.
			if span := trace.SpanFromContext(r.Context()); span.IsRecording() && r.Pattern != "" {
				span.SetName(r.Pattern)
				span.SetAttributes(attribute.String("http.route", r.Pattern))
			}
			// The matched pattern, never the path: paths can carry
			// credentials (the state in /auth/start/{state}). Checked
			// first so that a disabled debug level costs no record
			// (its arguments would be allocated anyway).
			if log.Enabled(r.Context(), slog.LevelDebug) {
				log.DebugContext(r.Context(), "request", "method", r.Method, "route", route,
					"status", status, "duration_ms", float64(elapsed.Microseconds())/1000)
			}
		}()
		// net/http's router answers a path with "." or ".." segments or
		// an empty segment with an HTML redirect to its cleaned form; the
		// API answers every error with its JSON envelope instead.
		if !cleanPath(r.URL.Path) {
			WriteError(rec, r, log, BadRequest("request path must not hold empty, '.' or '..' segments"))
			return
		}
		h.ServeHTTP(rec, r)
	})
}

// cleanPath reports whether p is already in the form the router cleans
// paths to (a trailing slash allowed).
// It runs on every request, so it walks the segments without allocating.
func cleanPath(p string) bool {
	if p == "" || p == "/" {
		return true
	}
	if p[0] != '/' {
		return false
	}
	rest := strings.TrimSuffix(p[1:], "/")
	for {
		seg, after, more := strings.Cut(rest, "/")
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		if !more {
			return true
		}
		rest = after
	}
}
