package mcp

import "fmt"

// Error codes. They are part of the API: agents switch on them.
const (
	CodeInvalidURL         = "mcp_invalid_url"
	CodeBlockedAddress     = "mcp_blocked_address"
	CodeUnreachable        = "mcp_unreachable"
	CodeBadMetadata        = "mcp_bad_metadata"
	CodeResourceMismatch   = "mcp_resource_mismatch"
	CodeNoS256             = "mcp_pkce_s256_unsupported"
	CodeNoClient           = "mcp_no_client"
	CodeRegistrationFailed = "mcp_registration_failed"
	CodeStepUpLoop         = "mcp_step_up_loop"
	CodeGrantUnsupported   = "mcp_grant_unsupported"
)

// Error is a refusal with a code and a message safe to show an agent
// (it never quotes a remote body). Cause is for logs.
type Error struct {
	Code    string
	Message string
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

func fail(code string, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Cause: cause}
}
