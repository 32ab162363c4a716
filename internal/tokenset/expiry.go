package tokenset

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/provider"
)

// Where a token's expiry came from, in the order they are tried.
const (
	ExpiryFromExpiresIn = "expires_in"
	ExpiryFromJWT       = "jwt_exp"
	ExpiryFromDefault   = "provider_default"
	ExpiryUnknown       = "unknown"
)

// InferExpiry decides when an access token expires. Many providers omit
// expires_in; an unknown expiry is never read as "never expires" — such
// tokens are refreshed when an agent reports a 401 and by the keep-alive.
func InferExpiry(t *exchange.Token, p provider.Profile, now time.Time) (time.Time, string) {
	if !t.Expiry.IsZero() {
		return t.Expiry.UTC(), ExpiryFromExpiresIn
	}
	if exp, ok := jwtExp(t.AccessToken); ok && exp.After(now.Add(-24*time.Hour)) && exp.Before(now.Add(10*365*24*time.Hour)) {
		return exp.UTC(), ExpiryFromJWT
	}
	if p.TokenLifetimeSeconds > 0 {
		return now.Add(time.Duration(p.TokenLifetimeSeconds) * time.Second).UTC(), ExpiryFromDefault
	}
	return time.Time{}, ExpiryUnknown
}

// jwtExp reads the exp claim of a JWT-shaped access token without
// verifying it: it is only a hint for when to refresh, never trusted for
// identity.
func jwtExp(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || len(tok) > 16<<10 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Exp == "" {
		return time.Time{}, false
	}
	secs, err := claims.Exp.Float64()
	if err != nil || secs <= 0 {
		return time.Time{}, false
	}
	return time.Unix(int64(secs), 0), true
}
