package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Error is an error meant for the client: its Code and Message are sent in
// the envelope; Cause, if any, is logged and never sent.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration // sets Retry-After when > 0
	Extra      map[string]any
	Cause      error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// Envelope is the JSON body of every error answer.
type Envelope struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes shared by the broker and the gateway.
const (
	CodeBadRequest     = "bad_request"
	CodeUnauthorized   = "unauthorized"
	CodeNotFound       = "not_found"
	CodeAlreadyExists  = "already_exists"
	CodeNotReady       = "not_ready"
	CodeReauthRequired = "reauth_required"
	CodeTooLarge       = "too_large"
	CodeNotImplemented = "not_implemented"
	CodeProviderError  = "provider_error"
	CodeUnavailable    = "unavailable"
	CodeInternal       = "internal"
	CodeMethod         = "method_not_allowed"
	CodeRateLimited    = "rate_limited"
	// CodeOwnerRequired: a gateway call to the broker named no owner.
	CodeOwnerRequired = "owner_required"
	// CodeTooManyPending: the client has too many consents waiting.
	CodeTooManyPending = "too_many_pending"
	// CodeScopeNotAllowed: a consent asked for a scope outside the
	// provider's allowed_scopes.
	CodeScopeNotAllowed = "scope_not_allowed"
	// CodeProviderNotAllowed: an agent asked for a provider its key
	// configuration does not list.
	CodeProviderNotAllowed = "provider_not_allowed"
	// CodeProxyOnly: a proxy-only agent asked for a token; it reaches
	// provider APIs through the gateway's proxy instead.
	CodeProxyOnly = "proxy_only"
)

func newErr(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// BadRequest is a 400 with a message that says what to fix.
func BadRequest(format string, args ...any) *Error {
	return newErr(http.StatusBadRequest, CodeBadRequest, format, args...)
}

// Unauthorized is a 401.
func Unauthorized(msg string) *Error {
	return newErr(http.StatusUnauthorized, CodeUnauthorized, "%s", msg)
}

// NotFound is a 404 for the named thing ("connection", "provider").
func NotFound(what string) *Error {
	return newErr(http.StatusNotFound, CodeNotFound, "%s not found", what)
}

// maxPathInMessage bounds the request path an error message repeats.
const maxPathInMessage = 200

// NoSuchEndpoint is the 404 for a method and path no route serves, worded
// the same by the broker and the gateway: "no such endpoint: GET /v1/tokn".
// The path is the escaped form, so it cannot carry control characters.
func NoSuchEndpoint(r *http.Request) *Error {
	p := r.URL.EscapedPath()
	if len(p) > maxPathInMessage {
		p = p[:maxPathInMessage] + "…"
	}
	return newErr(http.StatusNotFound, CodeNotFound, "no such endpoint: %s %s", r.Method, p)
}

// Conflict is a 409 with a specific code.
func Conflict(code, format string, args ...any) *Error {
	return newErr(http.StatusConflict, code, format, args...)
}

// Unavailable is a 503 with Retry-After.
func Unavailable(msg string, retryAfter time.Duration, cause error) *Error {
	e := newErr(http.StatusServiceUnavailable, CodeUnavailable, "%s", msg)
	e.RetryAfter, e.Cause = retryAfter, cause
	return e
}

// BadGateway is a 502 for an upstream (provider or broker) that answered
// wrongly.
func BadGateway(code, msg string, cause error) *Error {
	e := newErr(http.StatusBadGateway, code, "%s", msg)
	e.Cause = cause
	return e
}

// As returns err as an *Error when it is one (possibly wrapped).
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

func setRetryAfter(h http.Header, d time.Duration) {
	if d <= 0 {
		return
	}
	secs := int((d + time.Second - 1) / time.Second)
	h.Set("Retry-After", strconv.Itoa(secs))
}
