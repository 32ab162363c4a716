package exchange

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/dromos-dev/dromos/internal/secret"
)

// AuthMethod is how the client authenticates to the token endpoint, named as
// in the token_endpoint_auth_method registry (RFC 7591).
type AuthMethod string

const (
	// AuthBasic sends client_id and client_secret in an HTTP Basic
	// Authorization header (RFC 6749 §2.3.1).
	AuthBasic AuthMethod = "client_secret_basic"
	// AuthPost sends client_id and client_secret as form parameters.
	AuthPost AuthMethod = "client_secret_post"
	// AuthAuto tries AuthBasic first and, when the endpoint answers
	// invalid_client, retries once with AuthPost; the Client remembers per
	// URL which one worked. The empty AuthMethod means AuthAuto.
	AuthAuto AuthMethod = "auto"
	// AuthNone is a public client: client_id in the form, no secret.
	AuthNone AuthMethod = "none"
)

// Endpoint is one provider's token endpoint and our registration there.
type Endpoint struct {
	TokenURL     string
	ClientID     string
	ClientSecret secret.String
	AuthMethod   AuthMethod
	// ExtraHeaders are added to every request (a provider's API version
	// header, say). They cannot replace Authorization, Content-Type or
	// Accept, which this package sets itself.
	ExtraHeaders map[string]string
	// AcceptAnyTokenType and TokenMember switch on provider quirks in
	// parsing the token response; see ParseOptions. Both are off by
	// default, which keeps the strict behaviour.
	AcceptAnyTokenType bool
	TokenMember        string
	// JSONBody sends requests as a JSON object of string members instead
	// of RFC 6749's form encoding, for providers that document only JSON
	// request bodies (Notion, Atlassian). A JSON revocation request carries
	// the token alone, without token_type_hint.
	JSONBody bool
	// Resource is an RFC 8707 resource indicator sent with every token
	// request (code exchange, refresh, client credentials).
	Resource string
	// Audience is the aud of a private_key_jwt client assertion: the
	// authorization server's issuer; "" means the token URL.
	Audience string
}

func (ep Endpoint) parseOptions() ParseOptions {
	return ParseOptions{AcceptAnyTokenType: ep.AcceptAnyTokenType, TokenMember: ep.TokenMember}
}

// String implements fmt.Stringer. Header values are left out because some
// providers want an API key there.
func (ep Endpoint) String() string {
	return fmt.Sprintf("exchange.Endpoint{token_url=%s client_id=%s auth_method=%s extra_headers=%v}",
		redactURL(ep.TokenURL), ep.ClientID, ep.method(), ep.headerNames())
}

// LogValue implements slog.LogValuer, for the same reason as String.
func (ep Endpoint) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("token_url", redactURL(ep.TokenURL)),
		slog.String("client_id", ep.ClientID),
		slog.String("auth_method", string(ep.method())),
		slog.Any("extra_headers", ep.headerNames()),
	)
}

// redactURL hides the password a URL's userinfo may carry.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

func (ep Endpoint) headerNames() []string {
	names := make([]string, 0, len(ep.ExtraHeaders))
	for k := range ep.ExtraHeaders {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func (ep Endpoint) method() AuthMethod {
	if ep.AuthMethod == "" {
		return AuthAuto
	}
	return ep.AuthMethod
}

// validate checks what every call needs, without echoing any value: a URL
// may carry credentials in its userinfo.
func (ep Endpoint) validate() error {
	if ep.ClientID == "" {
		return fmt.Errorf("%w: endpoint without client id", ErrInvalidInput)
	}
	switch ep.method() {
	case AuthBasic, AuthPost, AuthAuto, AuthNone, AuthPrivateKeyJWT:
	default:
		return fmt.Errorf("%w: unknown auth method", ErrInvalidInput)
	}
	for k, v := range ep.ExtraHeaders {
		// Checked here so a bad header is a configuration error rather than
		// a transport failure that Classify would call transient.
		if !httpguts.ValidHeaderFieldName(k) || !httpguts.ValidHeaderFieldValue(v) {
			return fmt.Errorf("%w: invalid extra header", ErrInvalidInput)
		}
	}
	return nil
}

// validateURL accepts only absolute http(s) URLs. which names the URL in
// the error ("token URL", "revocation URL").
func validateURL(raw, which string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%w: %s is not an absolute http(s) URL", ErrInvalidInput, which)
	}
	return nil
}

// reservedHeader reports whether this package sets the header itself, so
// ExtraHeaders may not replace it.
func reservedHeader(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Authorization", "Content-Type", "Accept", "Content-Length", "Host":
		return true
	}
	return false
}

// authenticate adds client authentication for method (never AuthAuto) to the
// form and request headers.
func authenticate(method AuthMethod, ep Endpoint, form url.Values, h http.Header, now time.Time) error {
	switch method {
	case AuthPrivateKeyJWT:
		a, err := clientAssertion(ep, now)
		if err != nil {
			return err
		}
		form.Set("client_id", ep.ClientID)
		form.Set("client_assertion_type", assertionType)
		form.Set("client_assertion", a)
	case AuthBasic:
		h.Set("Authorization", basicAuth(ep.ClientID, ep.ClientSecret))
	case AuthPost:
		form.Set("client_id", ep.ClientID)
		form.Set("client_secret", ep.ClientSecret.Reveal())
	case AuthNone:
		form.Set("client_id", ep.ClientID)
	}
	return nil
}

// basicAuth builds the header of RFC 6749 §2.3.1: id and secret are each
// form-urlencoded before joining, so a ':' in either survives the split on
// the server side. (net/http's SetBasicAuth skips that step.)
func basicAuth(clientID string, clientSecret secret.String) string {
	var b strings.Builder
	b.WriteString(url.QueryEscape(clientID))
	b.WriteByte(':')
	b.WriteString(url.QueryEscape(clientSecret.Reveal()))
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(b.String()))
}
