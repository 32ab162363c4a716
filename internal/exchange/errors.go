package exchange

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors. The protocol ones mean the provider answered something a
// compliant token endpoint never sends; retrying will not help.
var (
	// ErrRedirect: the endpoint answered with a 3xx. Redirects are never
	// followed, because following one would send the client credentials and
	// the code to whatever host the Location names.
	ErrRedirect = errors.New("exchange: token endpoint answered with a redirect")
	// ErrBodyTooLarge: the response body exceeded Options.MaxBody.
	ErrBodyTooLarge = errors.New("exchange: response body too large")
	// ErrMalformed: the body is neither a JSON object nor a form-encoded
	// token response, or a known member has the wrong type.
	ErrMalformed = errors.New("exchange: malformed token response")
	// ErrMissingAccessToken: a success response without a non-empty
	// access_token.
	ErrMissingAccessToken = errors.New("exchange: token response without access_token")
	// ErrBadTokenType: token_type is missing or not "Bearer".
	ErrBadTokenType = errors.New("exchange: token response with unsupported token_type")
	// ErrTransport: the request did not complete (connection refused, reset,
	// timeout, cancelled context). Always wrapped around the cause.
	ErrTransport = errors.New("exchange: transport failure")
	// ErrInvalidInput: the call itself was unusable (an endpoint without a
	// URL or client id, an unknown auth method, an empty code…). Nothing was
	// sent.
	ErrInvalidInput = errors.New("exchange: invalid input")
)

// Error is an OAuth error answered by the endpoint (RFC 6749 §5.2), or a
// non-2xx answer without one, in which case Code is empty. Its fields are
// sanitised when parsed: control and format characters are stripped and
// Description is cut to 200 characters, so printing an Error cannot inject
// log lines or echo a large upstream body.
type Error struct {
	StatusCode  int
	Code        string
	Description string
	URI         string
	// RetryAfter is the provider's Retry-After (seconds or a date, at most
	// an hour) on a 429 or 5xx answer; 0 when it sent none.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("exchange: ")
	if e.Code == "" {
		b.WriteString("token endpoint answered HTTP ")
		b.WriteString(strconv.Itoa(e.StatusCode))
		b.WriteString(" without an OAuth error")
		return b.String()
	}
	b.WriteString("oauth error ")
	b.WriteString(strconv.Quote(e.Code))
	b.WriteString(" (HTTP ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	b.WriteString(")")
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	return b.String()
}

// Class is what a caller should do about an error. Its values are stable and
// short so they can be used as metric labels.
type Class string

const (
	// ClassNone is the class of a nil error.
	ClassNone Class = ""
	// ClassInvalidGrant: the code or refresh token is dead (used, expired,
	// revoked): invalid_grant or a provider's own name for it (GitHub's
	// bad_refresh_token, Slack's invalid_refresh_token…). The user must
	// consent again.
	ClassInvalidGrant Class = "invalid_grant"
	// ClassInvalidClient: the provider rejects our client registration
	// (invalid_client, unauthorized_client, GitHub's
	// incorrect_client_credentials). An operator must fix it.
	ClassInvalidClient Class = "invalid_client"
	// ClassTransient: network failure, timeout, 5xx, 429,
	// temporarily_unavailable or server_error. Retry later.
	ClassTransient Class = "transient"
	// ClassProtocol: the provider answered something unusable (garbage,
	// no access_token, bad token_type, a redirect, an oversized body, any
	// other 4xx or OAuth error), or the call was invalid. Retrying the same
	// request will not help.
	ClassProtocol Class = "protocol"
)

// Classify maps an error returned by this package to its Class. Errors this
// package did not produce are ClassTransient when they are network or
// context errors and ClassProtocol otherwise.
func Classify(err error) Class {
	if err == nil {
		return ClassNone
	}
	var oe *Error
	if errors.As(err, &oe) {
		return oe.class()
	}
	if errors.Is(err, ErrTransport) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled) {
		return ClassTransient
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return ClassTransient
	}
	return ClassProtocol
}

func (e *Error) class() Class {
	switch {
	case isDeadGrantCode(e.Code):
		return ClassInvalidGrant
	case isBadClientCode(e.Code):
		return ClassInvalidClient
	// server_error is how RFC 6749 lets a server say "500" where it cannot
	// use the status code, so it is as retryable as a 500.
	case strings.EqualFold(e.Code, "temporarily_unavailable"), strings.EqualFold(e.Code, "server_error"):
		return ClassTransient
	case e.StatusCode >= 500, e.StatusCode == 429:
		return ClassTransient
	default:
		return ClassProtocol
	}
}

// isDeadGrantCode reports whether code says the grant itself is dead, so
// only a new consent helps. Besides RFC 6749's invalid_grant, some providers
// answer a dead refresh token with their own code, often inside an HTTP 200:
//   - GitHub: bad_refresh_token (docs.github.com, "Generating a user access
//     token for a GitHub App", Troubleshooting > Bad refresh token).
//   - Slack, as {"ok":false,"error":…}: invalid_refresh_token (the error
//     example on docs.slack.dev/reference/methods/tooling.tokens.rotate);
//     token_revoked and token_expired, the codes Slack's Web API gives for
//     a revoked or expired token (seen in copies of Slack's error tables;
//     not confirmed on Slack's own pages for its oauth methods).
//
// Left as ClassProtocol these would be retried as transient forever: the
// agent would get 503 on every read instead of 409 reauth_required.
func isDeadGrantCode(code string) bool {
	for _, c := range [...]string{"invalid_grant", "bad_refresh_token", "invalid_refresh_token", "token_revoked", "token_expired"} {
		if strings.EqualFold(code, c) {
			return true
		}
	}
	return false
}

// isBadClientCode reports whether code says the provider rejects our client
// registration. GitHub calls it incorrect_client_credentials (docs.github.com,
// the same Troubleshooting section, and "Troubleshooting OAuth app access
// token request errors").
func isBadClientCode(code string) bool {
	for _, c := range [...]string{"invalid_client", "unauthorized_client", "incorrect_client_credentials"} {
		if strings.EqualFold(code, c) {
			return true
		}
	}
	return false
}

// isInvalidClient reports whether err is the answer that makes AuthAuto try
// the other client authentication method.
func isInvalidClient(err error) bool {
	var oe *Error
	if !errors.As(err, &oe) {
		return false
	}
	return strings.EqualFold(oe.Code, "invalid_client") &&
		(oe.StatusCode == 400 || oe.StatusCode == 401)
}

// Limits for the upstream text kept in an Error. The description limit is
// part of the package contract; the others only stop a hostile provider from
// making our errors arbitrarily long.
const (
	maxDescription = 200
	maxCode        = 64
	maxURI         = 200
	maxTokenType   = 32
)

// sanitize keeps at most limit runes of s, dropping control and format
// characters (newlines, ANSI escapes, bidi overrides) and invalid UTF-8, so
// upstream text can go into an error message or a log line safely.
func sanitize(s string, limit int) string {
	clean := true
	n := 0
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			clean = false
			break
		}
		n++
	}
	if clean && n <= limit {
		return s
	}
	var b strings.Builder
	n = 0
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			continue
		}
		if n == limit {
			break
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
