package storage

import (
	"context"
	"time"
)

// RevocationStore keeps pending revocations: grants the broker still has
// to revoke at a provider after their connection is gone. Any replica may
// work on them; a claim is a lease so only one works on a row at a time.
type RevocationStore interface {
	// DeleteConnectionRevoking loads the connection and its token (nil
	// when none) under the connection's row lock and calls fn. When fn
	// returns a revocation it is inserted; the connection, its token and
	// its step-ups are deleted and its connection.deleted lifecycle event
	// recorded, as DeleteConnection does; all in one transaction. If fn returns an
	// error nothing changes and the error is returned unchanged. A missing
	// connection is ErrNotFound.
	DeleteConnectionRevoking(ctx context.Context, id string, fn func(Connection, *Token) (*Revocation, error)) error
	// CreateRevocation inserts r on its own (a grant that never had a
	// stored connection). A taken id is ErrAlreadyExists.
	CreateRevocation(ctx context.Context, r Revocation) error
	// ClaimRevocations returns up to limit (0 or less means 100)
	// revocations whose NextAttemptAt is at or before now (the soonest due
	// are chosen first), after setting their NextAttemptAt to leaseUntil in the
	// same transaction, so that no other caller gets them before the lease
	// runs out. Concurrent callers, in other processes too, never get the
	// same row for one lease.
	ClaimRevocations(ctx context.Context, now, leaseUntil time.Time, limit int) ([]Revocation, error)
	// UpdateRevocation loads the revocation under a row lock, calls fn and
	// writes back what fn returns (ID, ConnectionID, ProviderID, Sealed and
	// CreatedAt are kept).
	UpdateRevocation(ctx context.Context, id string, fn func(Revocation) (Revocation, error)) (Revocation, error)
	// DeleteRevocation removes the revocation (done or given up); a
	// missing one is ErrNotFound.
	DeleteRevocation(ctx context.Context, id string) error
	// CountRevocations returns how many revocations are pending.
	CountRevocations(ctx context.Context) (int64, error)
}

// Revocation is a grant still to be revoked at its provider. It outlives
// the connection it came from, so it carries what the attempt needs.
type Revocation struct {
	ID           string
	ConnectionID string // for audit; the connection itself is gone
	ProviderID   string
	// Sealed is the vault sealing of the tokens to revoke (format and
	// additional data owned by package revocation).
	Sealed []byte
	// Attempts counts the attempts made so far.
	Attempts int
	// NextAttemptAt is when the revocation is next due (or when the
	// current claim runs out).
	NextAttemptAt time.Time
	// GiveUpAt is when retrying stops.
	GiveUpAt time.Time
	// LastErrorClass is the class of the last failure (never a secret).
	LastErrorClass string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}
