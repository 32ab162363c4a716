package discovery

import (
	"errors"
	"fmt"
)

// Sentinel errors, wrapped in an [*Error]; test for them with errors.Is.
var (
	// ErrInvalidIssuer: the configured issuer is not an absolute http(s) URL
	// without query or fragment.
	ErrInvalidIssuer = errors.New("invalid issuer URL")
	// ErrUnreachable: the request failed before an HTTP response arrived
	// (DNS, connection refused, TLS, timeout).
	ErrUnreachable = errors.New("discovery endpoint unreachable")
	// ErrHTTPStatus: the server answered with something other than 200,
	// including a redirect, which is never followed.
	ErrHTTPStatus = errors.New("unexpected HTTP status")
	// ErrTooLarge: the document exceeds Options.MaxBody.
	ErrTooLarge = errors.New("discovery document too large")
	// ErrNotJSON: the body is not a JSON object, or a known field has the
	// wrong type.
	ErrNotJSON = errors.New("discovery document is not a valid JSON object")
	// ErrIssuerMismatch: the document's issuer differs from the configured one.
	ErrIssuerMismatch = errors.New("issuer mismatch")
	// ErrMissingEndpoint: a required endpoint is absent; the message names it.
	ErrMissingEndpoint = errors.New("required endpoint missing")
	// ErrInvalidEndpoint: an endpoint is not an acceptable URL; the message
	// names it.
	ErrInvalidEndpoint = errors.New("invalid endpoint URL")
)

// Error reports a failed discovery. It never contains a response body.
type Error struct {
	// Issuer is the configured issuer.
	Issuer string
	// URL is the document URL that failed, empty when no request was made.
	URL string
	// Status is the HTTP status of the failed answer, 0 when none came.
	Status int
	// Err wraps one of the sentinel errors above.
	Err error
}

func (e *Error) Error() string {
	if e.URL == "" {
		return fmt.Sprintf("discovery for issuer %q: %v", e.Issuer, e.Err)
	}
	return fmt.Sprintf("discovery for issuer %q: %v (GET %s)", e.Issuer, e.Err, e.URL)
}

func (e *Error) Unwrap() error { return e.Err }

// Reason names the class of a discovery failure in words safe to show a
// caller: "HTTP 404", "not JSON", "unreachable"… It never holds an
// address, a body or a lower-level error text. It is "" for an error that
// is not a discovery failure.
func Reason(err error) string {
	var de *Error
	if !errors.As(err, &de) {
		return ""
	}
	switch {
	case errors.Is(err, ErrHTTPStatus) && de.Status != 0:
		return fmt.Sprintf("HTTP %d", de.Status)
	case errors.Is(err, ErrHTTPStatus):
		return "unexpected HTTP status"
	case errors.Is(err, ErrUnreachable):
		return "unreachable"
	case errors.Is(err, ErrNotJSON):
		return "not JSON"
	case errors.Is(err, ErrTooLarge):
		return "document too large"
	case errors.Is(err, ErrInvalidIssuer):
		return "invalid issuer URL"
	case errors.Is(err, ErrIssuerMismatch):
		return "issuer mismatch"
	case errors.Is(err, ErrMissingEndpoint):
		return "required endpoint missing"
	case errors.Is(err, ErrInvalidEndpoint):
		return "invalid endpoint URL"
	}
	return "failed"
}
