package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Sentinel errors. Test for them with errors.Is; every error the gateway
// answered is also an *APIError with the status, code and message.
var (
	// ErrNotFound: the connection or provider does not exist, or belongs
	// to another agent (404).
	ErrNotFound = errors.New("dromos: not found")
	// ErrPending: the user has not finished consent yet (409 not_ready).
	ErrPending = errors.New("dromos: connection not ready")
	// ErrReauthRequired: the connection failed or expired; the user must
	// connect again, under the same id with RequestConnectionInput.ConnectionID
	// (409 reauth_required).
	ErrReauthRequired = errors.New("dromos: re-consent required")
	// ErrUnauthorized: the gateway refused the API key (401).
	ErrUnauthorized = errors.New("dromos: unauthorized")
	// ErrFailed: WaitForActive saw the connection end up failed.
	ErrFailed = errors.New("dromos: connection failed")
	// ErrNotSupported: the gateway does not offer the operation: a forced
	// refresh answered 501, or DeleteConnection found no such route.
	ErrNotSupported = errors.New("dromos: not supported by this gateway")
	// ErrStepUpLimited: too many step-ups of the connection lately (429
	// step_up_limited); APIError.RetryAfter says when to try again.
	ErrStepUpLimited = errors.New("dromos: too many step-ups")
	// ErrStepUpFailed: WaitForStepUp saw the step-up fail; the connection
	// is unchanged.
	ErrStepUpFailed = errors.New("dromos: step-up failed")
)

// APIError is an error answer of the gateway: the HTTP status and the
// envelope's code and message. The message never carries a secret.
type APIError struct {
	Status  int
	Code    string
	Message string
	// RetryAfter is the wait the gateway asked for with Retry-After; 0
	// when it did not send one. A wait longer than the RetryPolicy's
	// MaxDelay is not taken: the error is returned at once and the caller
	// decides when to try again.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = strings.ToLower(strings.ReplaceAll(http.StatusText(e.Status), " ", "_"))
	}
	msg := fmt.Sprintf("dromos: %d %s", e.Status, code)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		msg += " (retry after " + e.RetryAfter.String() + ")"
	}
	return msg
}

// Is lets errors.Is match an *APIError against the sentinels.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrPending:
		return e.Status == http.StatusConflict && e.Code == "not_ready"
	case ErrReauthRequired:
		return e.Status == http.StatusConflict && e.Code == "reauth_required"
	case ErrNotSupported:
		return e.Status == http.StatusNotImplemented || e.Status == http.StatusMethodNotAllowed
	case ErrStepUpLimited:
		return e.Status == http.StatusTooManyRequests && e.Code == "step_up_limited"
	}
	return false
}

// maxMessage bounds the message kept from an error answer: it ends up in
// logs, and a proxy's HTML page is no message.
const maxMessage = 512

// newAPIError reads the {"code","message"} envelope; a body that is not
// one (a proxy's HTML page) leaves both empty rather than quoting it.
func newAPIError(status int, body []byte) *APIError {
	var env struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	e := &APIError{Status: status}
	if json.Unmarshal(body, &env) == nil {
		e.Code, e.Message = clip(env.Code, 64), clip(env.Message, maxMessage)
	}
	return e
}

func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !validCut(s, n) {
		n--
	}
	return s[:n] + "…"
}

// validCut reports whether s[:n] ends on a rune boundary.
func validCut(s string, n int) bool { return n == len(s) || s[n]&0xC0 != 0x80 }

// FailedError is WaitForActive's error for a connection that ended up
// failed; errors.Is(err, ErrFailed) holds for it.
type FailedError struct {
	ConnectionID string
	Detail       string // the finer status when not "failed": expired (revoked only while a deletion runs)
	Reason       string // why, when the broker knows: access_denied, invalid_grant, consent_expired…
}

func (e *FailedError) Error() string {
	msg := "dromos: connection " + e.ConnectionID + " failed"
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

func (e *FailedError) Unwrap() error { return ErrFailed }
