package exchange

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/dromos-dev/dromos/internal/secret"
)

// GrantTypeDeviceCode is the grant_type of a device access token request
// (RFC 8628 §3.4).
const GrantTypeDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

// The error codes of RFC 8628 §3.5 a device token poll can answer.
const (
	ErrCodeAuthorizationPending = "authorization_pending"
	ErrCodeSlowDown             = "slow_down"
	ErrCodeAccessDenied         = "access_denied"
	ErrCodeExpiredToken         = "expired_token"
)

// DefaultDeviceInterval is the poll interval when the provider names none
// (RFC 8628 §3.2).
const DefaultDeviceInterval = 5 * time.Second

// Limits on what a device authorization answer may hold: the user code is
// shown to people, the device code is stored (sealed) and sent back.
const (
	maxDeviceCode   = 4096
	maxUserCode     = 64
	maxVerification = 2048
	maxInterval     = time.Hour
	// maxDeviceExpiry bounds how long the broker keeps a device code and
	// polls for it (providers give 10 to 30 minutes): a provider answering
	// days would keep a pending connection, and its polls, that long.
	maxDeviceExpiry = time.Hour
)

// DeviceAuthorization is a device authorization answer (RFC 8628 §3.2).
// DeviceCode is a secret that never leaves the broker: String and
// LogValue redact it.
type DeviceAuthorization struct {
	DeviceCode              secret.String
	UserCode                string
	VerificationURI         string
	VerificationURIComplete string
	ExpiresIn               time.Duration
	Interval                time.Duration
}

// String implements fmt.Stringer without the device code.
func (d DeviceAuthorization) String() string {
	return fmt.Sprintf("DeviceAuthorization{UserCode:%q VerificationURI:%q ExpiresIn:%s Interval:%s DeviceCode:[redacted]}",
		d.UserCode, d.VerificationURI, d.ExpiresIn, d.Interval)
}

// LogValue implements slog.LogValuer without the device code.
func (d DeviceAuthorization) LogValue() slog.Value {
	return slog.GroupValue(slog.String("verification_uri", d.VerificationURI),
		slog.Duration("expires_in", d.ExpiresIn), slog.Duration("interval", d.Interval))
}

// AuthorizeDevice asks the provider's device authorization endpoint
// (RFC 8628 §3.1) for a device and user code, authenticated as at the
// token endpoint (ep's method; AuthNone sends client_id alone, as public
// device clients do). scopes may be empty. An OAuth error answer is an
// *Error.
func (c *Client) AuthorizeDevice(ctx context.Context, deviceURL string, ep Endpoint, scopes []string) (DeviceAuthorization, error) {
	if err := ep.validate(); err != nil {
		return DeviceAuthorization{}, err
	}
	if err := validateURL(deviceURL, "device authorization URL"); err != nil {
		return DeviceAuthorization{}, err
	}
	form := url.Values{"client_id": {ep.ClientID}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	var out DeviceAuthorization
	err := c.post(ctx, "device_authorization", deviceURL, ep, form, func(r response) error {
		if r.status != http.StatusOK {
			_, err := ParseResponse(r.status, r.contentType, r.body, r.received)
			if err == nil {
				err = fmt.Errorf("%w: HTTP %d", ErrMalformed, r.status)
			}
			return err
		}
		fields, err := decodeBody(r.contentType, r.body)
		if err != nil {
			// GitHub answers form-encoded without a JSON Accept; a guessed
			// form without access_token lands here, so try it as a form.
			if fields, err = decodeForm(r.body, false); err != nil {
				return err
			}
		}
		if oe, ok := oauthError(r.status, fields); ok {
			return oe
		}
		out, err = parseDeviceAuthorization(fields)
		return err
	})
	if err != nil {
		return DeviceAuthorization{}, err
	}
	return out, nil
}

// parseDeviceAuthorization reads the members of RFC 8628 §3.2. Google
// names verification_uri verification_url (its "OAuth 2.0 for TV and
// Limited-Input Device Applications" guide); either is accepted.
func parseDeviceAuthorization(fields map[string]any) (DeviceAuthorization, error) {
	str := func(name string) string { s, _ := fields[name].(string); return s }
	d := DeviceAuthorization{
		DeviceCode:              secret.String(str("device_code")),
		UserCode:                str("user_code"),
		VerificationURI:         str("verification_uri"),
		VerificationURIComplete: str("verification_uri_complete"),
	}
	if d.VerificationURI == "" {
		d.VerificationURI = str("verification_url")
	}
	exp, ok := expiresIn(fields["expires_in"])
	if !ok {
		return DeviceAuthorization{}, fmt.Errorf("%w: device authorization answer without a positive expires_in", ErrMalformed)
	}
	d.ExpiresIn = min(time.Duration(exp)*time.Second, maxDeviceExpiry)
	d.Interval = DefaultDeviceInterval
	if raw, present := fields["interval"]; present {
		iv, ok := expiresIn(raw)
		if !ok {
			return DeviceAuthorization{}, fmt.Errorf("%w: device authorization answer with an unusable interval", ErrMalformed)
		}
		d.Interval = min(time.Duration(iv)*time.Second, maxInterval)
	}
	dc := d.DeviceCode.Reveal()
	switch {
	case dc == "" || len(dc) > maxDeviceCode:
		return DeviceAuthorization{}, fmt.Errorf("%w: device authorization answer without a usable device_code", ErrMalformed)
	case !printableCode(d.UserCode):
		return DeviceAuthorization{}, fmt.Errorf("%w: device authorization answer without a usable user_code", ErrMalformed)
	case !absoluteWebURL(d.VerificationURI):
		return DeviceAuthorization{}, fmt.Errorf("%w: device authorization answer without an absolute http(s) verification_uri", ErrMalformed)
	case d.VerificationURIComplete != "" && !absoluteWebURL(d.VerificationURIComplete):
		return DeviceAuthorization{}, fmt.Errorf("%w: device authorization answer with an unusable verification_uri_complete", ErrMalformed)
	}
	return d, nil
}

// printableCode accepts a user code people can read and type: 1 to
// maxUserCode printable characters without spaces at the ends.
func printableCode(s string) bool {
	if s == "" || len(s) > maxUserCode || strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// absoluteWebURL is what the broker hands an agent to show a person.
func absoluteWebURL(raw string) bool {
	if raw == "" || len(raw) > maxVerification || strings.ContainsAny(raw, " \t\r\n") {
		return false
	}
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil
}

// PollDevice makes one device access token request (RFC 8628 §3.4).
// While the user has not finished, the answer is an *Error whose Code is
// ErrCodeAuthorizationPending or ErrCodeSlowDown; a denial is
// ErrCodeAccessDenied, a lapsed code ErrCodeExpiredToken.
func (c *Client) PollDevice(ctx context.Context, ep Endpoint, deviceCode secret.String) (*Token, error) {
	if deviceCode.Reveal() == "" {
		return nil, fmt.Errorf("%w: empty device code", ErrInvalidInput)
	}
	form := url.Values{"grant_type": {GrantTypeDeviceCode}, "device_code": {deviceCode.Reveal()}}
	if ep.method() == AuthBasic || ep.method() == AuthAuto {
		// RFC 8628 §3.4 names client_id as required for public clients;
		// GitHub wants it from every client, and basic auth carries it
		// anyway, so sending it never hurts.
		form.Set("client_id", ep.ClientID)
	}
	return c.tokenCall(ctx, "device_code", ep, form)
}
