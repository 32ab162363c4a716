package idtoken

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"time"
)

// Claims are the verified claims of an id_token.
type Claims struct {
	Issuer          string
	Subject         string
	Email           string
	EmailVerified   bool
	Audience        []string
	AuthorizedParty string
	Nonce           string
	IssuedAt        time.Time
	Expiry          time.Time
}

// rawClaims is the payload as sent. Pointers tell a missing claim from a
// zero one.
type rawClaims struct {
	Issuer          string       `json:"iss"`
	Subject         string       `json:"sub"`
	Audience        audience     `json:"aud"`
	Expiry          *numericDate `json:"exp"`
	IssuedAt        *numericDate `json:"iat"`
	NotBefore       *numericDate `json:"nbf"`
	Nonce           *string      `json:"nonce"`
	AuthorizedParty string       `json:"azp"`
	Email           string       `json:"email"`
	EmailVerified   flexBool     `json:"email_verified"`
}

// audience accepts both forms RFC 7519 §4.1.3 allows: one string or an
// array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*a = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*a = list
	return nil
}

// numericDate is seconds since the epoch (RFC 7519 §2), integer or
// fractional.
type numericDate time.Time

// maxSeconds rejects dates absurdly far away before they overflow.
const maxSeconds = 1 << 40

func (d *numericDate) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return errors.New("date is null")
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return errors.New("date is not a number")
	}
	if math.IsNaN(f) || f < 0 || f > maxSeconds {
		return errors.New("date out of range")
	}
	sec, frac := math.Modf(f)
	*d = numericDate(time.Unix(int64(sec), int64(frac*1e9)).UTC())
	return nil
}

// flexBool accepts true/false and the strings "true"/"false", which some
// providers (Cognito, older Azure AD B2C) send for email_verified.
type flexBool bool

func (v *flexBool) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true", `"true"`:
		*v = true
	case "false", `"false"`, "null":
		*v = false
	default:
		return errors.New("not a boolean")
	}
	return nil
}

const (
	googleIssuer     = "https://accounts.google.com"
	googleBareIssuer = "accounts.google.com"
)

// checkClaims runs the claim checks of OIDC Core §3.1.3.7 in a fixed order,
// returning the first failure.
func (v *Verifier) checkClaims(rc *rawClaims, want Expect, now time.Time) error {
	if rc.Issuer == "" {
		return failf(CheckIssuer, ErrMissingClaim, "iss")
	}
	if rc.Issuer == googleBareIssuer && want.Issuer == googleIssuer {
		// Google documents both spellings of its issuer for id_tokens; the
		// verified claims carry the one the broker registered.
		rc.Issuer = googleIssuer
	}
	if rc.Issuer != want.Issuer {
		return failf(CheckIssuer, ErrIssuerMismatch, "expected %q", want.Issuer)
	}
	if len(rc.Audience) == 0 {
		return failf(CheckAudience, ErrMissingClaim, "aud")
	}
	if !slices.Contains(rc.Audience, want.ClientID) {
		return failf(CheckAudience, ErrAudienceMismatch, "expected %q", want.ClientID)
	}
	// Every other audience must be one the client trusts (OIDC Core
	// §3.1.3.7 item 3): a token also issued to an untrusted party is that
	// party's token as much as ours.
	for _, a := range rc.Audience {
		if a != want.ClientID && !slices.Contains(want.TrustedAudiences, a) {
			return failf(CheckAudience, ErrUntrustedAudience, "%q is neither the client id nor a trusted audience", a)
		}
	}
	// A token issued to several audiences must name the party it was issued
	// to, and that party must be us (OIDC Core §3.1.3.7 items 4 and 5).
	if len(rc.Audience) > 1 && rc.AuthorizedParty == "" {
		return failf(CheckAZP, ErrMissingClaim, "azp is required when aud has several values")
	}
	if rc.AuthorizedParty != "" && rc.AuthorizedParty != want.ClientID {
		return failf(CheckAZP, ErrAZPMismatch, "expected %q", want.ClientID)
	}
	if rc.Expiry == nil {
		return failf(CheckExpired, ErrMissingClaim, "exp")
	}
	exp := time.Time(*rc.Expiry)
	if !now.Before(exp.Add(v.skew)) {
		return failf(CheckExpired, ErrExpired, "expired at %s", exp.Format(time.RFC3339))
	}
	if rc.NotBefore != nil {
		if nbf := time.Time(*rc.NotBefore); nbf.After(now.Add(v.skew)) {
			return failf(CheckIssuedAt, ErrNotYetValid, "valid from %s", nbf.Format(time.RFC3339))
		}
	}
	if rc.IssuedAt == nil {
		return failf(CheckIssuedAt, ErrMissingClaim, "iat")
	}
	iat := time.Time(*rc.IssuedAt)
	if iat.After(now.Add(v.skew)) {
		return failf(CheckIssuedAt, ErrIssuedInFuture, "issued at %s", iat.Format(time.RFC3339))
	}
	if now.Sub(iat) > v.maxAge {
		return failf(CheckIssuedAt, ErrIssuedTooLongAgo, "issued at %s, limit %s", iat.Format(time.RFC3339), v.maxAge)
	}
	if want.Nonce != "" {
		if rc.Nonce == nil || *rc.Nonce == "" {
			return failf(CheckNonce, ErrMissingClaim, "nonce")
		}
		if subtle.ConstantTimeCompare([]byte(*rc.Nonce), []byte(want.Nonce)) != 1 {
			return fail(CheckNonce, ErrNonceMismatch)
		}
	}
	if rc.Subject == "" {
		return failf(CheckSubject, ErrMissingClaim, "sub")
	}
	return nil
}

func (rc *rawClaims) claims() Claims {
	c := Claims{
		Issuer:          rc.Issuer,
		Subject:         rc.Subject,
		Email:           rc.Email,
		EmailVerified:   bool(rc.EmailVerified),
		Audience:        slices.Clone([]string(rc.Audience)),
		AuthorizedParty: rc.AuthorizedParty,
		IssuedAt:        time.Time(*rc.IssuedAt),
		Expiry:          time.Time(*rc.Expiry),
	}
	if rc.Nonce != nil {
		c.Nonce = *rc.Nonce
	}
	return c
}
