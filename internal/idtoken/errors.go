package idtoken

import (
	"errors"
	"fmt"
)

// Check names used in [Error.Check] and as the result label of
// oidc_verifications_total.
const (
	CheckMalformed = "malformed"
	CheckAlgorithm = "algorithm"
	CheckSignature = "signature"
	CheckIssuer    = "issuer"
	CheckAudience  = "audience"
	CheckAZP       = "azp"
	CheckExpired   = "expired"
	CheckIssuedAt  = "issued_at"
	CheckNonce     = "nonce"
	CheckSubject   = "subject"
	CheckJWKS      = "jwks"
)

var checks = []string{
	CheckMalformed, CheckAlgorithm, CheckSignature, CheckIssuer, CheckAudience, CheckAZP,
	CheckExpired, CheckIssuedAt, CheckNonce, CheckSubject, CheckJWKS,
}

// Sentinel errors found inside an [*Error]; test for them with errors.Is.
var (
	ErrMalformed           = errors.New("not a well-formed signed JWT")
	ErrAlgorithmNotAllowed = errors.New("signing algorithm not allowed")
	ErrBadSignature        = errors.New("signature does not verify")
	ErrUnknownKey          = errors.New("no key in the provider's key set matches the token")
	ErrJWKSUnavailable     = errors.New("provider key set unavailable")
	ErrIssuerMismatch      = errors.New("issuer does not match")
	ErrAudienceMismatch    = errors.New("audience does not include the client id")
	ErrAZPMismatch         = errors.New("authorized party is not the client id")
	ErrUntrustedAudience   = errors.New("audience lists a party the client does not trust")
	ErrExpired             = errors.New("token expired")
	ErrNotYetValid         = errors.New("token not valid yet (nbf)")
	ErrIssuedInFuture      = errors.New("token issued in the future")
	ErrIssuedTooLongAgo    = errors.New("token issued too long ago")
	ErrNonceMismatch       = errors.New("nonce does not match")
	ErrMissingClaim        = errors.New("required claim missing")
	// ErrInvalidExpect reports a caller mistake in [Expect], never a token
	// problem; it is filed under the check it prevents.
	ErrInvalidExpect = errors.New("invalid verification expectations")
)

// Error is a failed verification. Check names the failed check; Err wraps
// one of the sentinel errors. Messages never contain the token or claim
// values taken from it.
type Error struct {
	Check string
	Err   error
}

func (e *Error) Error() string {
	return fmt.Sprintf("id_token %s check failed: %v", e.Check, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

func fail(check string, err error) error {
	return &Error{Check: check, Err: err}
}

func failf(check string, sentinel error, format string, args ...any) error {
	return &Error{Check: check, Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}
