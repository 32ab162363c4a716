package storage

import (
	"context"
	"time"
)

// StepUpStore keeps step-ups: new consents that add scopes to a live
// connection. The connection keeps serving its current token while a
// step-up is pending; only a completed step-up changes it.
type StepUpStore interface {
	// CreateStepUp inserts s in one transaction holding the row lock of
	// s.ConnectionID, after calling fn with that connection and its
	// step-ups created at or after since, newest first. If fn returns an
	// error nothing is written and the error is returned unchanged. A
	// missing connection is ErrNotFound; a taken id ErrAlreadyExists.
	CreateStepUp(ctx context.Context, s StepUp, since time.Time, fn func(Connection, []StepUp) error) error
	// LatestStepUp returns the connection's newest step-up, the one that
	// expires last (ties: by CreatedAt, then id), or ErrNotFound when it
	// has none.
	LatestStepUp(ctx context.Context, connectionID string) (StepUp, error)
	// UpdateStepUp loads the step-up under a row lock, calls fn and writes
	// back what fn returns (ID, ConnectionID and CreatedAt are kept).
	UpdateStepUp(ctx context.Context, id string, fn func(StepUp) (StepUp, error)) (StepUp, error)
	// FinishStepUp loads the step-up and its connection (with the
	// connection's token, nil when none) under row locks (the connection's
	// first, as everywhere else), calls fn and
	// writes back the step-up, the connection (Version incremented as in
	// UpdateConnection) and the token change, all in one transaction.
	FinishStepUp(ctx context.Context, id string, fn func(StepUp, Connection, *Token) (StepUp, Connection, TokenChange, error)) (StepUp, Connection, error)
}

// StepUpStatus is the life-cycle state of a step-up.
type StepUpStatus string

const (
	StepUpPending    StepUpStatus = "pending"    // consent URL handed out
	StepUpExchanging StepUpStatus = "exchanging" // callback accepted, code exchange running
	StepUpCompleted  StepUpStatus = "completed"  // the connection holds the new token set
	StepUpFailed     StepUpStatus = "failed"     // denied, exchange failed, or superseded; the connection is unchanged
)

// StepUp is one attempt to add scopes to an active connection. Deleting
// the connection deletes its step-ups.
type StepUp struct {
	ID           string
	ConnectionID string
	// Scopes is everything the new consent asks for: the connection's
	// scopes and the added ones.
	Scopes []string
	// Added is what the agent asked to add (for audit and limits).
	Added     []string
	ReturnURL string
	Status    StepUpStatus
	// StatusReason is a short machine-readable reason for a failure.
	StatusReason string
	Nonce        string
	// PKCEVerifier is the sealed code_verifier, sealed like a connection's
	// (vault AAD: the connection id); emptied once the attempt ends.
	PKCEVerifier []byte
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// ExpiresAt bounds the pending phase, as for a connection.
	ExpiresAt time.Time
}
