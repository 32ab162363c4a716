package sdk

import (
	"context"
	"errors"
)

// Step-up statuses (StepUpStatus.Status).
const (
	StepUpPending   = "pending"
	StepUpCompleted = "completed"
	StepUpFailed    = "failed"
)

// StepUpStatus is how a connection's latest step-up went. Reason says why
// it failed: the provider's error (access_denied…), expired (not finished
// within ten minutes), identity_mismatch (another account consented)….
// Scopes is everything it asks for, the connection's scopes included.
type StepUpStatus struct {
	Status string   `json:"status"`
	Reason string   `json:"reason,omitempty"`
	Scopes []string `json:"scopes"`
}

// AddScopesInput asks for more scopes on an active connection.
type AddScopesInput struct {
	ConnectionID string   // the active connection, yours
	UserID       string   // as when the connection was requested
	ProviderName string   // the connection's provider
	MCPServerURL string   // instead of ProviderName: the connection's MCP server
	Scopes       []string // the scopes to add
	ReturnURL    string   // where the browser lands after consent
}

// AddScopes starts a step-up: a consent for the connection's scopes plus
// in.Scopes, under the same connection id. Send the user to the answer's
// AuthURL (its Scopes are the union asked for). The connection stays
// active and GetToken keeps returning its current token until the user
// completes that consent; then the new token and scopes replace the old
// ones at once. If the user denies or walks away, nothing changes. Wait
// for the outcome with WaitForStepUp. At most three step-ups per
// connection in ten minutes: the next is ErrStepUpLimited.
func (c *Client) AddScopes(ctx context.Context, in AddScopesInput) (*Connection, error) {
	if in.ConnectionID == "" {
		return nil, errors.New("dromos: AddScopes needs the connection id")
	}
	if len(in.Scopes) == 0 {
		return nil, errors.New("dromos: AddScopes needs scopes to add")
	}
	return c.RequestConnection(ctx, RequestConnectionInput{UserID: in.UserID, ProviderName: in.ProviderName,
		Scopes: in.Scopes, ReturnURL: in.ReturnURL, ConnectionID: in.ConnectionID, MCPServerURL: in.MCPServerURL})
}

// StepUpFailedError is WaitForStepUp's error for a step-up that failed;
// errors.Is(err, ErrStepUpFailed) holds for it. The connection is
// unchanged and still usable.
type StepUpFailedError struct {
	ConnectionID string
	Reason       string
}

func (e *StepUpFailedError) Error() string {
	msg := "dromos: step-up of connection " + e.ConnectionID + " failed"
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

func (e *StepUpFailedError) Unwrap() error { return ErrStepUpFailed }

// WaitForStepUp polls CheckConnection until the connection's latest
// step-up completed (nil), failed (a *StepUpFailedError), the connection
// itself stopped being active (a *FailedError), or ctx ends. Call it after
// AddScopes, with a deadline: a step-up that is not finished expires after
// ten minutes.
func (c *Client) WaitForStepUp(ctx context.Context, id string, opts WaitOptions) error {
	return c.poll(ctx, id, opts, func(s *Status) (bool, error) {
		if s.Status == StatusFailed {
			return true, &FailedError{ConnectionID: id, Detail: s.Detail, Reason: s.Reason}
		}
		if s.StepUp == nil {
			return true, errors.New("dromos: connection " + id + " has no step-up")
		}
		switch s.StepUp.Status {
		case StepUpCompleted:
			return true, nil
		case StepUpFailed:
			return true, &StepUpFailedError{ConnectionID: id, Reason: s.StepUp.Reason}
		}
		return false, nil
	})
}
