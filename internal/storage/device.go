package storage

import (
	"context"
	"time"
)

// DeviceStore keeps the device authorization grants (RFC 8628) whose
// token endpoint the broker polls until the user approves or denies. A
// grant row lives beside its pending connection and goes with it (a
// deleted connection deletes its grant). Any replica may poll; a claim
// moves NextPollAt to a lease, so only one polls a grant at a time.
type DeviceStore interface {
	// CreateDeviceConnection stores the pending connection c (Version 1)
	// and its grant d (d.ConnectionID must be c.ID) in one transaction.
	// With maxPending > 0 it first applies CreatePendingConnection's cap:
	// ErrLimitReached and nothing written when c.ClientName already has
	// maxPending pending connections.
	CreateDeviceConnection(ctx context.Context, c Connection, d DeviceGrant, maxPending int) error
	// GetDeviceGrant returns the grant of the connection, ErrNotFound when
	// it has none.
	GetDeviceGrant(ctx context.Context, connectionID string) (DeviceGrant, error)
	// ClaimDeviceGrants returns up to limit (0 or less means 100) grants
	// whose NextPollAt is at or before now, soonest due first, after
	// setting their NextPollAt to leaseUntil in the same transaction.
	// Concurrent callers, in other processes too, never get the same grant
	// for one lease (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite's single
	// writer claims one call at a time).
	ClaimDeviceGrants(ctx context.Context, now, leaseUntil time.Time, limit int) ([]DeviceGrant, error)
	// UpdateDeviceGrant loads the grant under a row lock, calls fn and
	// writes back what fn returns (ConnectionID, ProviderID and CreatedAt
	// are kept, and DeviceCode when fn returns it empty; key rotation
	// re-seals it). An error from fn is returned unchanged and nothing is
	// written.
	UpdateDeviceGrant(ctx context.Context, connectionID string, fn func(DeviceGrant) (DeviceGrant, error)) (DeviceGrant, error)
	// DeleteDeviceGrant removes the grant (the poll ended); a missing one
	// is ErrNotFound.
	DeleteDeviceGrant(ctx context.Context, connectionID string) error
}

// DeviceGrant is one device authorization the broker polls for.
type DeviceGrant struct {
	ConnectionID string
	ProviderID   string
	// DeviceCode is the vault sealing of the device_code (format and
	// additional data owned by package devicepoll). Never stored in
	// plain text.
	DeviceCode []byte
	// IntervalSeconds is the wait between two polls: the provider's
	// interval, grown by 5 s with every slow_down (RFC 8628 §3.5).
	IntervalSeconds int
	// NextPollAt is when the grant is next due (or when the current
	// claim runs out).
	NextPollAt time.Time
	// ExpiresAt is when the device code expires (the provider's
	// expires_in after the authorization).
	ExpiresAt time.Time
	// Polls counts the token requests made so far.
	Polls        int
	LastPolledAt time.Time // zero before the first poll
	CreatedAt    time.Time
	UpdatedAt    time.Time
}
