package confirm

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

// TTL is how long a confirmation runs, from the code exchange.
const TTL = 5 * time.Minute

// Reasons: StatusReason values of awaiting and failed confirmations.
const (
	// AwaitingUser: the application has not presented the first value yet.
	AwaitingUser = "awaiting_user"
	// AwaitingBrowser: the user matched; the browser has not come back.
	AwaitingBrowser = "awaiting_browser"

	UserMismatch    = "user_mismatch"
	BrowserMismatch = "browser_mismatch"
	Expired         = "confirmation_expired"
	Reused          = "confirmation_reused"
)

// Value is a one-time confirmation value: the connection id, a dot, and
// 32 random bytes in base64url. Its String and LogValue redact it.
type Value string

// String redacts the value.
func (Value) String() string { return "[confirmation]" }

// LogValue redacts the value in slog lines.
func (Value) LogValue() slog.Value { return slog.StringValue("[confirmation]") }

// Reveal returns the value itself, for the one URL it goes into.
func (v Value) Reveal() string { return string(v) }

// New returns a fresh value for the connection and its digest.
func New(rand io.Reader, connID string) (Value, string, error) {
	var b [32]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", "", fmt.Errorf("confirm: random value: %w", err)
	}
	v := Value(connID + "." + base64.RawURLEncoding.EncodeToString(b[:]))
	return v, Digest(string(v)), nil
}

// Digest is what a connection keeps of a value.
func Digest(v string) string {
	sum := sha256.Sum256([]byte("dromos-confirmation:" + v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// maxValueLen bounds what is parsed: an id and 43 characters of secret.
const maxValueLen = 256 + 1 + 43

// ConnectionID returns the connection a value names, or ok=false when v
// does not have a value's shape.
func ConnectionID(v string) (id string, ok bool) {
	if len(v) > maxValueLen {
		return "", false
	}
	id, secret, found := strings.Cut(v, ".")
	if !found || id == "" || len(secret) != 43 {
		return "", false
	}
	if _, err := base64.RawURLEncoding.DecodeString(secret); err != nil {
		return "", false
	}
	return id, true
}

func matches(c storage.Connection, v string) bool {
	return c.ConfirmationHash != "" && subtle.ConstantTimeCompare([]byte(Digest(v)), []byte(c.ConfirmationHash)) == 1
}

// Outcome says what a step did.
type Outcome string

const (
	// Advanced: the step passed; write the connection back.
	Advanced Outcome = "advanced"
	// Failed: the connection failed with a reason; write it back with its
	// token erased, and revoke that token at the provider.
	Failed Outcome = "failed"
	// Refused: the value is not the one awaited; nothing changes.
	Refused Outcome = "refused"
	// Over: no confirmation is running on the connection (it was
	// confirmed, failed, or never asked for one); nothing changes.
	Over Outcome = "over"
)

// Begin moves a connection whose code was just exchanged to
// awaiting_confirmation, waiting for the user step with the value whose
// digest is digest.
func Begin(c storage.Connection, digest string, now time.Time) storage.Connection {
	c.Status, c.StatusReason = storage.StatusAwaitingConfirmation, AwaitingUser
	c.ConfirmationHash, c.ConfirmationExpiresAt = digest, now.Add(TTL)
	c.UpdatedAt = now
	return c
}

// User is the user step: the application presents value and the user id
// it has signed in. On Advanced the connection awaits the browser with
// the value whose digest is nextDigest.
func User(c storage.Connection, value, userID, nextDigest string, now time.Time) (storage.Connection, Outcome) {
	if c.Status != storage.StatusAwaitingConfirmation {
		return c, Over
	}
	if c.StatusReason != AwaitingUser {
		// The user step was taken: this is the first value again, in
		// whoever's hands. The flow is compromised.
		return fail(c, Reused, now), Failed
	}
	if !matches(c, value) {
		return c, Refused
	}
	if !now.Before(c.ConfirmationExpiresAt) {
		return fail(c, Expired, now), Failed
	}
	if subtle.ConstantTimeCompare([]byte(userID), []byte(c.UserID)) != 1 {
		return fail(c, UserMismatch, now), Failed
	}
	c.StatusReason, c.ConfirmationHash, c.UpdatedAt = AwaitingBrowser, nextDigest, now
	return c, Advanced
}

// Browser is the browser step: bound says whether the request carries
// the flow's browser cookie. On Advanced the connection is active.
func Browser(c storage.Connection, value string, bound bool, now time.Time) (storage.Connection, Outcome) {
	if c.Status != storage.StatusAwaitingConfirmation {
		return c, Over
	}
	if c.StatusReason != AwaitingBrowser || !matches(c, value) {
		return c, Refused
	}
	if !now.Before(c.ConfirmationExpiresAt) {
		return fail(c, Expired, now), Failed
	}
	if !bound {
		return fail(c, BrowserMismatch, now), Failed
	}
	c.Status, c.StatusReason, c.PKCEVerifier = storage.StatusActive, "", nil
	c.ConfirmationHash, c.ConfirmationExpiresAt, c.UpdatedAt = "", time.Time{}, now
	return c, Advanced
}

// Lapse fails a confirmation that ran out without anyone presenting a
// value (a sweep, or a read that finds it late); Over when none runs or
// it has time left.
func Lapse(c storage.Connection, now time.Time) (storage.Connection, Outcome) {
	if c.Status != storage.StatusAwaitingConfirmation || now.Before(c.ConfirmationExpiresAt) {
		return c, Over
	}
	return fail(c, Expired, now), Failed
}

func fail(c storage.Connection, reason string, now time.Time) storage.Connection {
	c.Status, c.StatusReason, c.PKCEVerifier = storage.StatusFailed, reason, nil
	c.ConfirmationHash, c.ConfirmationExpiresAt, c.UpdatedAt = "", time.Time{}, now
	return c
}
