package refresh

import (
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

// lifetimeShare bounds a refresh margin to this fraction (1/lifetimeShare)
// of the lifetime the provider gave the token.
const lifetimeShare = 3

// effectiveMargin is how long before its expiry a token is refreshed: the
// configured margin, but never more than a third of the lifetime the
// provider gave the token (from when it was obtained to when it expires).
// Without the bound, a token that lives less than the margin (20-second
// tokens, or Keycloak's 5 minutes against a larger margin) would be inside
// it from the moment it was issued, and every read would refresh it again.
// An unknown expiry or obtained time, or a token issued already expired,
// keeps the configured margin.
func effectiveMargin(margin time.Duration, obtained, expires time.Time) time.Duration {
	if obtained.IsZero() || expires.IsZero() {
		return margin
	}
	life := expires.Sub(obtained)
	if life <= 0 {
		return margin
	}
	return min(margin, life/lifetimeShare)
}

// dueAt is when the token row tok is due for a refresh with margin: its
// expiry less the effective margin. Zero when its expiry is unknown (such
// a token is refreshed only on demand or to keep the grant alive). The row
// is written when the token is obtained, so its UpdatedAt is when the
// provider issued it (re-sealing under a new key keeps it).
func dueAt(margin time.Duration, tok storage.Token) time.Time {
	if tok.ExpiresAt.IsZero() {
		return time.Time{}
	}
	return tok.ExpiresAt.Add(-effectiveMargin(margin, tok.UpdatedAt, tok.ExpiresAt))
}

// due reports whether tok needs a refresh now with margin.
func (r *Refresher) due(margin time.Duration, tok storage.Token) bool {
	at := dueAt(margin, tok)
	return !at.IsZero() && r.now().After(at)
}

// usableAt reports whether tok has not expired at now (an unknown expiry
// counts as not expired).
func usableAt(tok storage.Token, now time.Time) bool {
	return tok.ExpiresAt.IsZero() || tok.ExpiresAt.After(now)
}
