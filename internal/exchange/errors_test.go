package exchange_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/dromos-dev/dromos/internal/exchange"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want exchange.Class
	}{
		{"nil", nil, exchange.ClassNone},
		{"invalid_grant 400", &exchange.Error{StatusCode: 400, Code: "invalid_grant"}, exchange.ClassInvalidGrant},
		{"invalid_grant in a 200", &exchange.Error{StatusCode: 200, Code: "invalid_grant"}, exchange.ClassInvalidGrant},
		{"invalid_grant wrapped", fmt.Errorf("refresh: %w", &exchange.Error{StatusCode: 400, Code: "invalid_grant"}), exchange.ClassInvalidGrant},
		{"invalid_client 401", &exchange.Error{StatusCode: 401, Code: "invalid_client"}, exchange.ClassInvalidClient},
		{"unauthorized_client 400", &exchange.Error{StatusCode: 400, Code: "unauthorized_client"}, exchange.ClassInvalidClient},
		{"temporarily_unavailable 400", &exchange.Error{StatusCode: 400, Code: "temporarily_unavailable"}, exchange.ClassTransient},
		{"server_error 400", &exchange.Error{StatusCode: 400, Code: "server_error"}, exchange.ClassTransient},
		{"500 without code", &exchange.Error{StatusCode: 500}, exchange.ClassTransient},
		{"503 without code", &exchange.Error{StatusCode: 503}, exchange.ClassTransient},
		{"429 without code", &exchange.Error{StatusCode: 429}, exchange.ClassTransient},
		{"400 without code", &exchange.Error{StatusCode: 400}, exchange.ClassProtocol},
		{"invalid_request 400", &exchange.Error{StatusCode: 400, Code: "invalid_request"}, exchange.ClassProtocol},
		{"invalid_scope 400", &exchange.Error{StatusCode: 400, Code: "invalid_scope"}, exchange.ClassProtocol},
		{"unknown code in a 200", &exchange.Error{StatusCode: 200, Code: "bad_verification_code"}, exchange.ClassProtocol},
		// Providers' own names for a dead refresh token or a refused client.
		{"GitHub bad_refresh_token in a 200", &exchange.Error{StatusCode: 200, Code: "bad_refresh_token"}, exchange.ClassInvalidGrant},
		{"Slack invalid_refresh_token in a 200", &exchange.Error{StatusCode: 200, Code: "invalid_refresh_token"}, exchange.ClassInvalidGrant},
		{"Slack token_revoked in a 200", &exchange.Error{StatusCode: 200, Code: "token_revoked"}, exchange.ClassInvalidGrant},
		{"Slack token_expired in a 200", &exchange.Error{StatusCode: 200, Code: "token_expired"}, exchange.ClassInvalidGrant},
		{"dead-token code in any case", &exchange.Error{StatusCode: 400, Code: "Bad_Refresh_Token"}, exchange.ClassInvalidGrant},
		{"GitHub incorrect_client_credentials in a 200", &exchange.Error{StatusCode: 200, Code: "incorrect_client_credentials"}, exchange.ClassInvalidClient},
		{"GitHub incorrect_client_credentials 401", &exchange.Error{StatusCode: 401, Code: "incorrect_client_credentials"}, exchange.ClassInvalidClient},
		{"a code that only contains a dead-token name", &exchange.Error{StatusCode: 400, Code: "not_bad_refresh_token"}, exchange.ClassProtocol},
		{"redirect", fmt.Errorf("%w (HTTP 302)", exchange.ErrRedirect), exchange.ClassProtocol},
		{"body too large", exchange.ErrBodyTooLarge, exchange.ClassProtocol},
		{"malformed", exchange.ErrMalformed, exchange.ClassProtocol},
		{"missing access token", exchange.ErrMissingAccessToken, exchange.ClassProtocol},
		{"bad token type", exchange.ErrBadTokenType, exchange.ClassProtocol},
		{"invalid input", exchange.ErrInvalidInput, exchange.ClassProtocol},
		{"transport", fmt.Errorf("%w: %w", exchange.ErrTransport, io.ErrUnexpectedEOF), exchange.ClassTransient},
		{"deadline", context.DeadlineExceeded, exchange.ClassTransient},
		{"cancelled", fmt.Errorf("x: %w", context.Canceled), exchange.ClassTransient},
		{"net error", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, exchange.ClassTransient},
		{"foreign error", errors.New("something else"), exchange.ClassProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exchange.Classify(tt.err); got != tt.want {
				t.Fatalf("Classify(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  *exchange.Error
		want string
	}{
		{"with code and description", &exchange.Error{StatusCode: 400, Code: "invalid_grant", Description: "expired"},
			`exchange: oauth error "invalid_grant" (HTTP 400): expired`},
		{"with code only", &exchange.Error{StatusCode: 401, Code: "invalid_client"},
			`exchange: oauth error "invalid_client" (HTTP 401)`},
		{"without code", &exchange.Error{StatusCode: 502},
			`exchange: token endpoint answered HTTP 502 without an OAuth error`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Fatalf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestClassifyProviderErrorBodies runs providers' real error answers through
// the parser, so the code class() sees is the one the body carries: a
// GitHub-style error inside an HTTP 200 and Slack's {"ok":false,"error":…}.
func TestClassifyProviderErrorBodies(t *testing.T) {
	tests := []struct {
		name   string
		status int
		ctype  string
		body   string
		want   exchange.Class
	}{
		{"GitHub dead refresh token, JSON in a 200", 200, "application/json",
			`{"error":"bad_refresh_token","error_description":"The refresh token passed is incorrect or expired.","error_uri":"https://docs.github.com"}`,
			exchange.ClassInvalidGrant},
		{"GitHub dead refresh token, form in a 200", 200, "application/x-www-form-urlencoded",
			`error=bad_refresh_token&error_description=The+refresh+token+passed+is+incorrect+or+expired.`,
			exchange.ClassInvalidGrant},
		{"GitHub bad client, JSON in a 200", 200, "application/json",
			`{"error":"incorrect_client_credentials","error_description":"The client_id and/or client_secret passed are incorrect."}`,
			exchange.ClassInvalidClient},
		{"Slack invalid_refresh_token", 200, "application/json; charset=utf-8",
			`{"ok":false,"error":"invalid_refresh_token"}`, exchange.ClassInvalidGrant},
		{"Slack token_revoked", 200, "application/json", `{"ok":false,"error":"token_revoked"}`, exchange.ClassInvalidGrant},
		{"Slack token_expired", 200, "application/json", `{"ok":false,"error":"token_expired"}`, exchange.ClassInvalidGrant},
		{"Slack other error stays protocol", 200, "application/json", `{"ok":false,"error":"invalid_code"}`, exchange.ClassProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := exchange.ParseResponse(tt.status, tt.ctype, []byte(tt.body), parseNow)
			if err == nil {
				t.Fatalf("ParseResponse accepted an error answer: %v", tok)
			}
			if got := exchange.Classify(err); got != tt.want {
				t.Fatalf("Classify(%v) = %q, want %q", err, got, tt.want)
			}
		})
	}
}
