package brokerclient

import (
	"context"
	"net/http"
)

// ConfirmRequest is the body of POST /connections/confirm. Confirmation
// is a one-time credential: callers must not log it.
type ConfirmRequest struct {
	Confirmation string `json:"confirmation"`
	UserID       string `json:"user_id"`
	ClientName   string `json:"client_name,omitempty"`
}

// Confirmation is the broker's answer to a user step that passed.
// ContinueURL holds the second one-time value: never log it.
type Confirmation struct {
	ConnectionID string `json:"connection_id"`
	Status       string `json:"status"`
	ContinueURL  string `json:"continue_url"`
}

// ConfirmConnection presents the application's confirmation of its user.
// Never retried: a value is single-use, and presenting it twice fails the
// connection.
func (cl *Client) ConfirmConnection(ctx context.Context, req ConfirmRequest) (Confirmation, error) {
	var out Confirmation
	err := cl.do(ctx, call{op: OpConfirm, method: http.MethodPost, path: []string{"connections", "confirm"}, body: req}, &out)
	return out, err
}
