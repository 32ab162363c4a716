package exchange

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Token is a successful token endpoint response.
//
// Its String, GoString and LogValue forms show no token, so printing or
// logging a Token by mistake leaks nothing. Extra is left out of them too,
// since providers put further tokens there (Slack's authed_user).
type Token struct {
	AccessToken  string
	TokenType    string
	RefreshToken string
	IDToken      string
	Scope        string
	// ExpiresIn is the lifetime in seconds the provider announced, or 0 when
	// it sent none or an unusable one (negative, over ten years, not a
	// number).
	ExpiresIn int64
	// Expiry is the time the response was parsed plus ExpiresIn, or zero when
	// unknown.
	Expiry time.Time
	// Extra holds every other member of the response, as decoded from JSON
	// (nested objects included), or as strings for form-encoded bodies. Nil
	// when there are none.
	Extra map[string]any
}

// maxExpiresIn is where an announced lifetime stops being believable; such a
// value is more likely a timestamp or a unit mistake than a real lifetime, and
// treating it as unknown makes the caller refresh on failure instead of
// trusting a token for decades.
const maxExpiresIn = 10 * 365 * 24 * 60 * 60

// Members with a meaning of their own; everything else goes to Extra.
const (
	memberAccessToken  = "access_token"
	memberTokenType    = "token_type"
	memberRefreshToken = "refresh_token"
	memberIDToken      = "id_token"
	memberScope        = "scope"
	memberExpiresIn    = "expires_in"
	memberError        = "error"
	memberErrorDesc    = "error_description"
	memberErrorURI     = "error_uri"
)

// ParseOptions are the per-provider switches of ParseResponseWith. The zero
// value is the strict RFC 6749 behaviour of ParseResponse.
type ParseOptions struct {
	// AcceptAnyTokenType accepts a token_type other than "Bearer", or none
	// at all, and reports it unchanged in Token.TokenType. It MUST be set
	// only for providers known to answer that way (Slack's "bot" and
	// "user", Shopify's missing member): for everyone else a non-Bearer
	// token_type means a token this client does not know how to present.
	AcceptAnyTokenType bool
	// TokenMember names a JSON object member holding the token when the
	// provider nests it (Slack puts the user token in "authed_user"). When
	// that object is present and carries an access_token, its token members
	// (access_token, token_type, refresh_token, id_token, scope,
	// expires_in) are the token; the top-level token members belong to
	// another token and are dropped rather than kept in Extra, and the
	// object's other members stay in Extra under its name. When the object
	// is absent the top level is parsed as usual.
	TokenMember string
}

// ParseResponse interprets a token endpoint answer. It accepts JSON and
// application/x-www-form-urlencoded bodies; text/plain bodies and unknown or
// missing content types are tried as JSON first and then as a form.
//
// A 3xx gives ErrRedirect. A non-2xx gives an *Error, with the OAuth error
// code when the body carries one and an empty Code otherwise. A 2xx carrying
// an "error" member is an *Error too. A success must have a non-empty
// access_token and a token_type of "Bearer" in any case; otherwise the error
// wraps ErrMissingAccessToken, ErrBadTokenType or ErrMalformed.
//
// now is the moment the response was received; Expiry is computed from it.
func ParseResponse(status int, contentType string, body []byte, now time.Time) (*Token, error) {
	return ParseResponseWith(ParseOptions{}, status, contentType, body, now)
}

// ParseResponseWith is ParseResponse with the provider switches in opts.
func ParseResponseWith(opts ParseOptions, status int, contentType string, body []byte, now time.Time) (*Token, error) {
	if status >= 300 && status < 400 {
		return nil, fmt.Errorf("%w (HTTP %d)", ErrRedirect, status)
	}
	fields, decodeErr := decodeBody(contentType, body)
	if status < 200 || status >= 300 {
		e := &Error{StatusCode: status}
		if decodeErr == nil {
			if oe, ok := oauthError(status, fields); ok {
				e = oe
			}
		}
		return nil, e
	}
	if decodeErr != nil {
		return nil, decodeErr
	}
	if oe, ok := oauthError(status, fields); ok {
		return nil, oe
	}
	if opts.TokenMember != "" {
		fields = liftMember(fields, opts.TokenMember)
	}
	return tokenFromFields(fields, now, opts.AcceptAnyTokenType)
}

// isTokenMember reports whether a member describes the token itself.
func isTokenMember(name string) bool {
	switch name {
	case memberAccessToken, memberTokenType, memberRefreshToken, memberIDToken, memberScope, memberExpiresIn:
		return true
	}
	return false
}

// liftMember returns the members of a response whose token sits in the
// object named name, or fields unchanged when there is no such object with
// an access_token. The top-level token members are dropped: they describe
// a different token (Slack's bot token next to the user token), which must
// not reach the caller's Extra, where it could be mistaken for this one.
func liftMember(fields map[string]any, name string) map[string]any {
	nested, ok := fields[name].(map[string]any)
	if !ok || nested[memberAccessToken] == nil {
		return fields
	}
	out := make(map[string]any, len(fields)+len(nested))
	for k, v := range fields {
		if k != name && !isTokenMember(k) {
			out[k] = v
		}
	}
	rest := make(map[string]any, len(nested))
	for k, v := range nested {
		if isTokenMember(k) {
			out[k] = v
		} else {
			rest[k] = v
		}
	}
	if len(rest) > 0 {
		out[name] = rest
	}
	return out
}

// decodeBody turns a body into its top-level members.
func decodeBody(contentType string, body []byte) (map[string]any, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mediaType = ""
	}
	switch {
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
		return decodeJSON(body)
	case mediaType == "application/x-www-form-urlencoded":
		return decodeForm(body, false)
	default:
		// GitHub answers form-encoded text/plain when asked without Accept,
		// and older providers label JSON as text/plain or text/javascript.
		if fields, err := decodeJSON(body); err == nil {
			return fields, nil
		}
		return decodeForm(body, true)
	}
}

func decodeJSON(body []byte) (map[string]any, error) {
	if body[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	var fields map[string]any
	if err := json.Unmarshal(body, &fields); err != nil {
		// The decoder's message can quote the body; keep only the fact.
		return nil, fmt.Errorf("%w: invalid JSON", ErrMalformed)
	}
	return fields, nil
}

// decodeForm parses a form-encoded body. When the form shape is only a guess
// (no content type said so), a body without access_token or error is not
// accepted: almost any text parses as a form, and calling an HTML page a
// token response missing its access_token would hide what happened.
func decodeForm(body []byte, guessed bool) (map[string]any, error) {
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("%w: invalid form encoding", ErrMalformed)
	}
	if guessed && !values.Has(memberAccessToken) && !values.Has(memberError) {
		return nil, fmt.Errorf("%w: neither JSON nor a form-encoded token response", ErrMalformed)
	}
	fields := make(map[string]any, len(values))
	for k, v := range values {
		if len(v) > 0 {
			fields[k] = v[0]
		}
	}
	return fields, nil
}

// oauthError reports whether fields carry an OAuth error and builds it.
// Besides the RFC 6749 string form it accepts the object form some providers
// use ({"error": {"code": …, "message": …}}).
func oauthError(status int, fields map[string]any) (*Error, bool) {
	raw, present := fields[memberError]
	if !present {
		return nil, false
	}
	e := &Error{StatusCode: status}
	switch v := raw.(type) {
	case nil:
		return nil, false
	case bool:
		if !v {
			return nil, false
		}
	case string:
		if v == "" {
			return nil, false
		}
		e.Code = v
	case map[string]any:
		if s, ok := v["code"].(string); ok {
			e.Code = s
		} else if s, ok := v["type"].(string); ok {
			e.Code = s
		}
		if s, ok := v["message"].(string); ok {
			e.Description = s
		}
	}
	if s, ok := fields[memberErrorDesc].(string); ok {
		e.Description = s
	}
	if s, ok := fields[memberErrorURI].(string); ok {
		e.URI = s
	}
	e.Code = sanitize(e.Code, maxCode)
	e.Description = sanitize(e.Description, maxDescription)
	e.URI = sanitize(e.URI, maxURI)
	return e, true
}

func tokenFromFields(fields map[string]any, now time.Time, anyTokenType bool) (*Token, error) {
	tok := &Token{}
	var err error
	if tok.AccessToken, err = stringMember(fields, memberAccessToken); err != nil {
		return nil, err
	}
	if tok.AccessToken == "" {
		return nil, ErrMissingAccessToken
	}
	if tok.TokenType, err = stringMember(fields, memberTokenType); err != nil {
		return nil, fmt.Errorf("%w: token_type is not a string", ErrBadTokenType)
	}
	switch {
	case anyTokenType:
	case tok.TokenType == "":
		return nil, fmt.Errorf("%w: token_type missing", ErrBadTokenType)
	case !strings.EqualFold(tok.TokenType, "bearer"):
		return nil, fmt.Errorf("%w: %q", ErrBadTokenType, sanitize(tok.TokenType, maxTokenType))
	}
	if tok.RefreshToken, err = stringMember(fields, memberRefreshToken); err != nil {
		return nil, err
	}
	if tok.IDToken, err = stringMember(fields, memberIDToken); err != nil {
		return nil, err
	}
	if tok.Scope, err = scopeMember(fields); err != nil {
		return nil, err
	}
	if secs, ok := expiresIn(fields[memberExpiresIn]); ok {
		tok.ExpiresIn = secs
		tok.Expiry = now.Add(time.Duration(secs) * time.Second)
	}
	for k, v := range fields {
		if isTokenMember(k) {
			continue
		}
		if tok.Extra == nil {
			tok.Extra = make(map[string]any, len(fields))
		}
		tok.Extra[k] = v
	}
	return tok, nil
}

// stringMember returns a string member, "" when absent or null. Any other
// type is a malformed response: a number where a token belongs is not
// something to guess about.
func stringMember(fields map[string]any, name string) (string, error) {
	switch v := fields[name].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	default:
		return "", fmt.Errorf("%w: %s is not a string", ErrMalformed, name)
	}
}

// scopeMember accepts the RFC's space-delimited string and the JSON array a
// few providers send instead.
func scopeMember(fields map[string]any) (string, error) {
	switch v := fields[memberScope].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case []any:
		parts := make([]string, 0, len(v))
		for _, item := range v {
			s, ok := item.(string)
			if !ok {
				return "", fmt.Errorf("%w: scope array holds a non-string", ErrMalformed)
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, " "), nil
	default:
		return "", fmt.Errorf("%w: scope is not a string", ErrMalformed)
	}
}

// expiresIn reads expires_in given as an integer, a float or a numeric
// string. It reports false for anything unusable: a bad lifetime means
// "unknown", never a failed exchange, since the token itself is fine.
func expiresIn(raw any) (int64, bool) {
	var f float64
	switch v := raw.(type) {
	case float64:
		f = v
	case string:
		s := strings.TrimSpace(v)
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			if n <= 0 || n > maxExpiresIn {
				return 0, false
			}
			return n, true
		}
		parsed, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, false
		}
		f = parsed
	default:
		return 0, false
	}
	if math.IsNaN(f) || f < 1 || f > maxExpiresIn {
		return 0, false
	}
	return int64(f), true
}

// String implements fmt.Stringer without showing any token.
func (t Token) String() string {
	return fmt.Sprintf("exchange.Token{type=%s scope=%q expiry=%s refresh_token=%t id_token=%t}",
		sanitize(t.TokenType, maxTokenType), t.Scope, t.expiryText(), t.RefreshToken != "", t.IDToken != "")
}

// GoString implements fmt.GoStringer, so %#v does not print tokens either.
func (t Token) GoString() string { return t.String() }

// LogValue implements slog.LogValuer without showing any token.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("token_type", sanitize(t.TokenType, maxTokenType)),
		slog.String("scope", t.Scope),
		slog.String("expiry", t.expiryText()),
		slog.Bool("has_refresh_token", t.RefreshToken != ""),
		slog.Bool("has_id_token", t.IDToken != ""),
	)
}

func (t Token) expiryText() string {
	if t.Expiry.IsZero() {
		return "unknown"
	}
	return t.Expiry.UTC().Format(time.RFC3339)
}
