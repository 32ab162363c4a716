package brokerclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/jsonscan"
)

// Operation names, used as the op metric label.
const (
	OpConsentSpec   = "consent_spec"
	OpGetConnection = "get_connection"
	OpGetToken      = "get_token"
	OpRefresh       = "refresh"
	OpDelete        = "delete_connection"
	OpListProviders = "list_providers"
	OpCatalog       = "catalog"
	// OpListConnections is the connection listing.
	OpListConnections = "list_connections"
	// OpConfirm is the user step of a confirmation.
	OpConfirm = "confirm_connection"
)

// ConsentRequest is the body of POST /auth/consent-spec.
type ConsentRequest struct {
	WorkspaceID  string   `json:"workspace_id"`
	UserID       string   `json:"user_id"`
	ClientName   string   `json:"client_name,omitempty"`
	ProviderName string   `json:"provider_name"`
	Scopes       []string `json:"scopes"`
	ReturnURL    string   `json:"return_url"`
	// Metadata holds one JSON value per key, sent as it is.
	Metadata     map[string]json.RawMessage `json:"metadata,omitempty"`
	ConnectionID string                     `json:"connection_id,omitempty"`
	MCPServerURL string                     `json:"mcp_server_url,omitempty"`
	Grant        string                     `json:"grant,omitempty"`
	// Credentials is an api_key or basic provider's credential: a secret.
	Credentials map[string]string `json:"credentials,omitempty"`
	// ConfirmURL and RequireConfirmation ask for user confirmation.
	ConfirmURL          string `json:"confirm_url,omitempty"`
	RequireConfirmation bool   `json:"require_confirmation,omitempty"`
	// ExpectedIdentity names who should consent.
	ExpectedIdentity *ExpectedIdentity `json:"expected_identity,omitempty"`
}

// ExpectedIdentity is who should consent to a new connection: another
// account fails it (identity_mismatch). The broker validates it.
type ExpectedIdentity struct {
	Email       string `json:"email,omitempty"`
	EmailDomain string `json:"email_domain,omitempty"`
	Sub         string `json:"sub,omitempty"`
}

// Consent is the broker's answer to a consent request. State is a bearer
// credential for the callback: callers must not log it.
type Consent struct {
	AuthURL      string    `json:"authUrl"`
	State        string    `json:"state"`
	Scopes       []string  `json:"scopes"`
	ProviderID   string    `json:"provider_id"`
	ConnectionID string    `json:"connection_id"`
	ExpiresAt    time.Time `json:"expires_at"`
	// Status is active or failed when the connection needed no consent,
	// pending for a device flow.
	Status       string `json:"status"`
	StatusReason string `json:"status_reason"`
	// The device flow's answer (RFC 8628 §3.2 without the device code,
	// which stays in the broker); ExpiresIn and Interval are seconds.
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	UserCode                string `json:"user_code"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// Connection holds the fields of a broker connection the gateway uses.
type Connection struct {
	ConnectionID string `json:"connection_id"`
	Status       string `json:"status"`
	StatusReason string `json:"status_reason"`
	// ProviderData is what the provider handed over besides the token
	// (QuickBooks realmId, Salesforce instance_url, Atlassian cloud ids…).
	ProviderData map[string]string `json:"provider_data"`
	// Metadata is the agent's own, one JSON value per key as given.
	Metadata map[string]json.RawMessage `json:"metadata"`
	// StepUp is the connection's latest step-up, nil when it had none.
	StepUp *StepUp `json:"step_up"`

	// The record's other public fields.
	UserID        string     `json:"user_id"`
	ClientName    string     `json:"client_name"`
	ProviderID    string     `json:"provider_id"`
	Provider      string     `json:"provider"`
	Scopes        []string   `json:"scopes"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	LastRefreshAt *time.Time `json:"last_refresh_at"`
}

// ConnectionQuery narrows ListConnections; empty fields match everything.
type ConnectionQuery struct {
	ClientName   string
	UserID       string
	ProviderName string
	Statuses     []string // any of these broker statuses
	Limit        int      // 0: the broker's default
	Cursor       string   // a NextCursor from an earlier page
}

// ConnectionPage is one page of a listing. NextCursor is empty on the last.
type ConnectionPage struct {
	Connections []Connection `json:"connections"`
	NextCursor  string       `json:"next_cursor"`
}

// StepUp reports a step-up: a new consent adding scopes to an active
// connection.
type StepUp struct {
	Status string   `json:"status"` // pending, completed or failed
	Reason string   `json:"reason"`
	Scopes []string `json:"scopes"`
}

// Provider holds the public fields of a registered provider. Only these are
// decoded, so client ids and secret flags never enter the gateway.
type Provider struct {
	Name        string   `json:"name"`
	DisplayName string   `json:"display_name"`
	Scopes      []string `json:"scopes"`
}

// Token is a broker token answer. It holds live credentials: keep it only
// for the request that asked for it and never log it.
type Token struct {
	AccessToken string
	TokenType   string
	// ExpiresIn and ExpiresAt are zero when the provider gave no expiry.
	ExpiresIn int64
	ExpiresAt time.Time
	Scope     string
	IDToken   string
	Provider  string
	// Extras are the other members of the provider's token response, as the
	// broker sent them, except refresh tokens nested in them when the
	// broker does not expose refresh tokens (see parseToken).
	Extras map[string]json.RawMessage
}

// IsTokenMember reports whether name is one of Token's named members, which
// an extra must never shadow.
func IsTokenMember(name string) bool {
	switch name {
	case "access_token", "token_type", "expires_in", "expires_at", "scope", "id_token", "provider":
		return true
	}
	return false
}

// ConsentSpec asks the broker to start a connection. It is never retried:
// a lost answer after the broker created the connection must not create a
// second one.
func (cl *Client) ConsentSpec(ctx context.Context, req ConsentRequest) (Consent, error) {
	var out Consent
	err := cl.do(ctx, call{op: OpConsentSpec, method: http.MethodPost, path: []string{"auth", "consent-spec"}, body: req}, &out)
	return out, err
}

// Connection reads a connection. clientName, when set, makes the broker
// answer 404 for a connection another client requested.
func (cl *Client) Connection(ctx context.Context, id, clientName string) (Connection, error) {
	var out Connection
	err := cl.do(ctx, call{op: OpGetConnection, method: http.MethodGet, path: []string{"connections", id}, query: clientQuery(clientName)}, &out)
	return out, err
}

// ListConnections lists connections, oldest first. With q.ClientName set,
// the broker lists that client's connections only.
func (cl *Client) ListConnections(ctx context.Context, q ConnectionQuery) (ConnectionPage, error) {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("client_name", q.ClientName)
	set("user_id", q.UserID)
	set("provider_name", q.ProviderName)
	set("cursor", q.Cursor)
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	v["status"] = q.Statuses
	var out ConnectionPage
	err := cl.do(ctx, call{op: OpListConnections, method: http.MethodGet, path: []string{"connections"}, query: v.Encode()}, &out)
	return out, err
}

// Token reads a currently valid access token for a connection.
func (cl *Client) Token(ctx context.Context, id, clientName string) (Token, error) {
	return cl.token(ctx, call{op: OpGetToken, method: http.MethodGet, path: []string{"connections", id, "token"}, query: clientQuery(clientName)})
}

// token runs a call answered with a token and reads the answer.
func (cl *Client) token(ctx context.Context, c call) (Token, error) {
	body, status, err := cl.fetch(ctx, c)
	if err != nil {
		return Token{}, err
	}
	raw, err := decodeMembers(body)
	if err != nil {
		return Token{}, unreadable(c.op, status, err)
	}
	return parseToken(c.op, raw)
}

// Refresh forces a refresh at the provider. It is never retried: the
// provider may rotate the refresh token on each use.
func (cl *Client) Refresh(ctx context.Context, id, clientName string) (Token, error) {
	return cl.token(ctx, call{op: OpRefresh, method: http.MethodPost, path: []string{"connections", id, "refresh"}, query: clientQuery(clientName)})
}

// DeleteConnection deletes a connection (the broker revokes it at the
// provider first). Not retried: a lost answer is safe to repeat by hand,
// but the agent should see the first outcome.
func (cl *Client) DeleteConnection(ctx context.Context, id, clientName string) error {
	return cl.do(ctx, call{op: OpDelete, method: http.MethodDelete, path: []string{"connections", id}, query: clientQuery(clientName)}, nil)
}

// CatalogEntry is one of the broker's provider templates.
type CatalogEntry struct {
	Name           string `json:"name"`
	DisplayName    string `json:"display_name"`
	DocsURL        string `json:"docs_url"`
	Configured     bool   `json:"configured"`
	TemplateParams []struct {
		Name string `json:"name"`
	} `json:"template_params"`
}

// Catalog lists the broker's provider templates and which are configured.
func (cl *Client) Catalog(ctx context.Context) ([]CatalogEntry, error) {
	var out struct {
		Templates []CatalogEntry `json:"templates"`
	}
	if err := cl.do(ctx, call{op: OpCatalog, method: http.MethodGet, path: []string{"catalog"}}, &out); err != nil {
		return nil, err
	}
	return out.Templates, nil
}

// Providers lists the registered providers.
func (cl *Client) Providers(ctx context.Context) ([]Provider, error) {
	var out struct {
		Providers []Provider `json:"providers"`
	}
	if err := cl.do(ctx, call{op: OpListProviders, method: http.MethodGet, path: []string{"providers"}}, &out); err != nil {
		return nil, err
	}
	return out.Providers, nil
}

// clientQuery is the encoded query naming the client: what
// url.Values{"client_name": {clientName}}.Encode() gives, built directly.
func clientQuery(clientName string) string {
	if clientName == "" {
		return ""
	}
	return "client_name=" + url.QueryEscape(clientName)
}

// parseToken reads the named members of a token answer and keeps the rest
// as extras. Its errors never include member values.
func parseToken(op string, raw map[string]json.RawMessage) (Token, error) {
	var t Token
	bad := func(member string, err error) (Token, error) {
		return Token{}, httpapi.BadGateway(CodeBrokerError, "the broker sent an unreadable token answer",
			fmt.Errorf("broker %s: token member %q: %w", op, member, err))
	}
	str := func(member string, dst *string, required bool) error {
		v, ok := raw[member]
		if !ok || string(v) == "null" {
			if required {
				return errors.New("missing")
			}
			return nil
		}
		if plain, ok := jsonscan.PlainString(v); ok {
			*dst = plain
		} else if err := json.Unmarshal(v, dst); err != nil {
			return errors.New("not a string")
		}
		if required && *dst == "" {
			return errors.New("empty")
		}
		return nil
	}
	for _, m := range []struct {
		name     string
		dst      *string
		required bool
	}{
		{"access_token", &t.AccessToken, true},
		{"token_type", &t.TokenType, true},
		{"scope", &t.Scope, false},
		{"id_token", &t.IDToken, false},
		{"provider", &t.Provider, false},
	} {
		if err := str(m.name, m.dst, m.required); err != nil {
			return bad(m.name, err)
		}
	}
	if v, ok := raw["expires_in"]; ok && string(v) != "null" {
		n, err := expiresIn(v)
		if err != nil {
			return bad("expires_in", err)
		}
		t.ExpiresIn = n
	}
	if v, ok := raw["expires_at"]; ok && string(v) != "null" {
		// What json.Unmarshal(v, &t.ExpiresAt) does for a JSON value
		// other than null, without the reflection.
		if err := t.ExpiresAt.UnmarshalJSON(v); err != nil {
			return bad("expires_at", errors.New("not an RFC 3339 time"))
		}
		t.ExpiresAt = t.ExpiresAt.UTC()
	}
	// A top-level refresh_token is in the answer only when the broker is
	// configured to hand refresh tokens out (EXPOSE_REFRESH_TOKEN), and it
	// passes through like any extra. Without one, a refresh token nested in
	// an extra (Slack's authed_user) can only come from a broker that
	// missed it, and is dropped here too: the gateway never passes on a
	// refresh token the broker was not told to give.
	exposed := false
	if v, ok := raw["refresh_token"]; ok && string(v) != "null" {
		exposed = true
	}
	extras := 0
	for k := range raw {
		if !IsTokenMember(k) {
			extras++
		}
	}
	if extras > 0 {
		t.Extras = make(map[string]json.RawMessage, extras)
		for k, v := range raw {
			if IsTokenMember(k) {
				continue
			}
			if !exposed {
				var keep bool
				if v, keep = withoutNestedRefreshTokens(v); !keep {
					continue
				}
			}
			t.Extras[k] = v
		}
	}
	return t, nil
}

// quotedRefreshToken is how the name appears in the broker's JSON, which
// encoding/json writes without escapes.
var quotedRefreshToken = []byte(`"refresh_token"`)

// withoutNestedRefreshTokens returns the JSON value v without the object
// members named refresh_token at any depth. Strings, numbers and objects
// that do not mention the name (every extra, in practice) are returned as
// they are without being decoded. keep is false when v cannot be decoded
// to be checked: it is then left out rather than passed on unchecked.
func withoutNestedRefreshTokens(v json.RawMessage) (out json.RawMessage, keep bool) {
	trimmed := bytes.TrimLeft(v, " \t\r\n")
	if len(trimmed) == 0 || (trimmed[0] != '{' && trimmed[0] != '[') || !bytes.Contains(v, quotedRefreshToken) {
		return v, true
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber() // numbers written again exactly as the broker sent them
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, false
	}
	if !dropRefreshTokens(&x) {
		return v, true // the name was only in a string value
	}
	out, err := json.Marshal(x)
	if err != nil {
		return nil, false
	}
	return out, true
}

// dropRefreshTokens deletes the object members named refresh_token at any
// depth in the decoded value *x and reports whether it deleted one.
func dropRefreshTokens(x *any) bool {
	dropped := false
	switch v := (*x).(type) {
	case map[string]any:
		if _, ok := v["refresh_token"]; ok {
			delete(v, "refresh_token")
			dropped = true
		}
		for k, e := range v {
			if dropRefreshTokens(&e) {
				v[k] = e
				dropped = true
			}
		}
	case []any:
		for i := range v {
			if dropRefreshTokens(&v[i]) {
				dropped = true
			}
		}
	}
	return dropped
}

// expiresIn accepts a JSON number or a numeric string, as providers send
// both and the broker may pass either through.
func expiresIn(v json.RawMessage) (int64, error) {
	if len(v) > 0 && len(v) <= 18 && allDigits(v) {
		// A plain JSON integer (JSON has no leading zeros): what the
		// json.Number path below gives, without the reflection.
		return strconv.ParseInt(string(v), 10, 64)
	}
	var n json.Number
	if err := json.Unmarshal(v, &n); err != nil {
		return 0, errors.New("not a number")
	}
	if i, err := n.Int64(); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil || f < 0 || f > 1<<53 {
		return 0, errors.New("not a number")
	}
	return int64(f), nil
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
