package sdk

import (
	"context"
	"errors"
	"net/http"
)

// Confirmation is the answer to a ConfirmConnection whose user matched.
type Confirmation struct {
	ConnectionID string
	// ContinueURL is where to send the browser now: the broker checks it
	// is the browser that consented, activates the connection and sends
	// the browser to the return URL. One-time: do not log it.
	ContinueURL string
}

// ConfirmConnection confirms which of your users a connection requested
// with ConfirmURL belongs to: confirmation is the value your confirm URL
// received, userID the user signed in to your application in that
// browser. When userID is the connection's user, send the browser to the
// answer's ContinueURL. Otherwise the connection fails, its tokens are
// revoked, and the error is an *APIError with Status 409 and Code
// "user_mismatch" (also "confirmation_expired" after five minutes,
// "confirmation_reused" for a value presented twice). It is never
// retried: a value presented twice fails the connection.
func (c *Client) ConfirmConnection(ctx context.Context, confirmation, userID string) (*Confirmation, error) {
	body := struct {
		Confirmation string `json:"confirmation"`
		UserID       string `json:"user_id"`
	}{confirmation, userID}
	var out struct {
		ConnectionID string `json:"connection_id"`
		ContinueURL  string `json:"continue_url"`
	}
	err := c.do(ctx, call{method: http.MethodPost, route: "/v1/confirm-connection", path: "/v1/confirm-connection", body: body, once: true}, &out)
	if err != nil {
		return nil, err
	}
	if out.ConnectionID == "" || out.ContinueURL == "" {
		return nil, errors.New("dromos: confirm-connection answer lacks connection_id or continue_url")
	}
	return &Confirmation{ConnectionID: out.ConnectionID, ContinueURL: out.ContinueURL}, nil
}
