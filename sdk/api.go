package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// RequestConnectionInput asks for a new connection. UserID, ProviderName,
// Scopes and ReturnURL are required by the gateway.
type RequestConnectionInput struct {
	UserID       string   // your identifier for the user
	ProviderName string   // a provider name or alias, case-insensitive
	Scopes       []string // OAuth scopes to ask the user for
	ReturnURL    string   // where the browser lands after consent
	// Metadata is optional data kept with the connection: any value
	// encoding/json can encode, per key (strings, numbers, booleans, nil,
	// slices, maps, structs). Limits: 64 keys, values nested at most 8
	// arrays or objects deep, 4096 bytes as compact JSON, no control
	// characters in keys or strings. Status.Metadata returns it.
	Metadata map[string]any
	// ConnectionID, when set, reconnects that connection (expired or
	// failed, and yours) under the same id instead of starting a new one.
	// For an active connection it starts a step-up: see AddScopes.
	ConnectionID string
	// MCPServerURL connects to a remote MCP server by its URL instead of
	// ProviderName; Scopes may then be empty (the server's own choice is
	// asked for). See docs/MCP.md.
	MCPServerURL string
	// Grant is "" (authorization_code) or, with MCPServerURL,
	// "client_credentials": no user, no AuthURL, active at once.
	Grant string
	// Credentials connects a provider whose auth_mode is api_key or basic
	// with a key or user/password pair instead of a consent: no AuthURL,
	// Connection.Status says active or failed (StatusReason
	// "credential_refused" when the provider's check refused it); Scopes
	// may be empty. With ConnectionID it replaces that connection's
	// credential (rotation). An empty &Credentials{} asks the user
	// instead: AuthURL opens Dromos's hosted form for the key, and the
	// browser returns to ReturnURL as after a consent.
	Credentials *Credentials
	// ConfirmURL, when set, requires your confirmation of the user before
	// the connection serves tokens: after consent the browser goes there
	// with connection_id and a one-time confirmation in the query; pass
	// that value to ConfirmConnection. Required for agents whose key has
	// the require-confirmation option.
	ConfirmURL string
	// ExpectedIdentity, when set, names who should consent: another
	// account fails the connection (Reason "identity_mismatch").
	ExpectedIdentity *ExpectedIdentity
}

// ExpectedIdentity is who should consent; every field set must match the
// provider's verified id_token: Email (case-insensitive, also sent as
// login_hint), EmailDomain (of the verified e-mail) or Sub.
type ExpectedIdentity struct {
	Email       string `json:"email,omitempty"`
	EmailDomain string `json:"email_domain,omitempty"`
	Sub         string `json:"sub,omitempty"`
}

// Credentials is what an api_key provider (APIKey) or a basic provider
// (Username and Password) takes. Its String and Format redact.
type Credentials struct {
	APIKey   string
	Username string
	Password string
}

func (c *Credentials) members() map[string]string {
	if c == nil {
		return nil
	}
	m := map[string]string{}
	for k, v := range map[string]string{"api_key": c.APIKey, "username": c.Username, "password": c.Password} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

// String describes c without its secrets.
func (c Credentials) String() string { return "Credentials{[REDACTED]}" }

// GoString is String, so %#v redacts too.
func (c Credentials) GoString() string { return c.String() }

// Format redacts under every verb.
func (c Credentials) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// Connection is a started connection: send the user to AuthURL, keep
// ConnectionID.
type Connection struct {
	AuthURL      string
	ConnectionID string
	State        string // the signed OAuth state inside AuthURL; treat it as a secret
	Scopes       []string
	ProviderID   string
	// Status is StatusActive or StatusFailed (with StatusReason) when the
	// connection needed no consent (Credentials, client credentials); ""
	// when the user must consent at AuthURL.
	Status       string
	StatusReason string
	// Device is set, and AuthURL empty, when the provider uses the device
	// authorization grant (RFC 8628): show the person Device.UserCode and
	// Device.VerificationURI, then poll CheckConnection (or
	// WaitForActive) until the connection is active or failed
	// (access_denied, expired_token). Status is then StatusPending.
	Device *DeviceCode
}

// DeviceCode is what a person needs to finish a device flow on another
// device: open VerificationURI and type UserCode, or open
// VerificationURIComplete, which carries the code. The code is valid for
// ExpiresIn; the broker polls the provider every Interval. The device code
// the provider issued stays in the broker.
type DeviceCode struct {
	VerificationURI         string
	VerificationURIComplete string
	UserCode                string
	ExpiresIn               time.Duration
	Interval                time.Duration
}

// Connection statuses as the gateway reports them.
const (
	StatusPending = "pending"
	StatusActive  = "active"
	StatusFailed  = "failed"
)

// Status is a connection's state. Status is StatusPending, StatusActive or
// StatusFailed; Detail is the finer broker status when it differs
// (exchanging; expired, which is also how a user revoking access at the
// provider shows up; revoked only while a deletion runs), Reason why it
// failed when known (access_denied, invalid_grant…).
// ProviderData holds what the provider handed over besides the token that
// API calls need: realmId (QuickBooks), shop (Shopify), instance_url
// (Salesforce), cloud_id (Atlassian), tenant_id (Xero)…
type Status struct {
	Status       string            `json:"status"`
	Detail       string            `json:"detail,omitempty"`
	Reason       string            `json:"reason,omitempty"`
	ProviderData map[string]string `json:"provider_data,omitempty"`
	// Metadata is what RequestConnectionInput.Metadata held, one JSON
	// value per key exactly as the gateway stored it (decode a value with
	// json.Unmarshal).
	Metadata map[string]json.RawMessage `json:"metadata,omitempty"`
	// StepUp is the connection's latest step-up (AddScopes); nil when it
	// never had one.
	StepUp *StepUpStatus `json:"step_up,omitempty"`
}

// Provider is a provider agents may ask for.
type Provider struct {
	Name        string   `json:"name"`
	DisplayName string   `json:"display_name"`
	Scopes      []string `json:"scopes"` // the provider's default scopes; RequestConnection still needs Scopes of its own
}

// connPath is the path of a per-connection route; an empty id is refused
// here rather than turned into another route.
func connPath(prefix, id string) (string, error) {
	if id == "" {
		return "", errors.New("dromos: empty connection id")
	}
	return prefix + "/" + url.PathEscape(id), nil
}

// RequestConnection starts a connection for a user. The answer's AuthURL
// points at the broker's /auth/start/{state}, which sends the browser on to
// the provider's consent page; the connection stays pending (for ten
// minutes) until the user finishes there. A retried attempt may leave an
// extra pending connection behind; it expires on its own.
func (c *Client) RequestConnection(ctx context.Context, in RequestConnectionInput) (*Connection, error) {
	body := struct {
		UserID       string            `json:"user_id"`
		ProviderName string            `json:"provider_name,omitempty"`
		Scopes       []string          `json:"scopes,omitempty"`
		ReturnURL    string            `json:"return_url"`
		Metadata     map[string]any    `json:"metadata,omitempty"`
		ConnectionID string            `json:"connection_id,omitempty"`
		MCPServerURL string            `json:"mcp_server_url,omitempty"`
		Grant        string            `json:"grant,omitempty"`
		Credentials  any               `json:"credentials,omitempty"` // nil, or a map: {} asks for the hosted form
		ConfirmURL   string            `json:"confirm_url,omitempty"`
		Expected     *ExpectedIdentity `json:"expected_identity,omitempty"`
	}{UserID: in.UserID, ProviderName: in.ProviderName, Scopes: in.Scopes, ReturnURL: in.ReturnURL, Metadata: in.Metadata,
		ConnectionID: in.ConnectionID, MCPServerURL: in.MCPServerURL, Grant: in.Grant, ConfirmURL: in.ConfirmURL,
		Expected: in.ExpectedIdentity}
	if in.Credentials != nil {
		body.Credentials = in.Credentials.members()
	}
	var out struct {
		AuthURL      string   `json:"authUrl"`
		ConnectionID string   `json:"connection_id"`
		State        string   `json:"state"`
		Scopes       []string `json:"scopes"`
		ProviderID   string   `json:"provider_id"`
		Status       string   `json:"status"`
		StatusReason string   `json:"status_reason"`

		VerificationURI         string `json:"verification_uri"`
		VerificationURIComplete string `json:"verification_uri_complete"`
		UserCode                string `json:"user_code"`
		ExpiresIn               int64  `json:"expires_in"`
		Interval                int64  `json:"interval"`
	}
	err := c.do(ctx, call{method: http.MethodPost, route: "/v1/request-connection", path: "/v1/request-connection", body: body}, &out)
	if err != nil {
		return nil, err
	}
	if (out.AuthURL == "" && in.Grant != "client_credentials" && out.Status == "") || out.ConnectionID == "" {
		return nil, errors.New("dromos: request-connection answer lacks authUrl or connection_id")
	}
	conn := &Connection{AuthURL: out.AuthURL, ConnectionID: out.ConnectionID, State: out.State, Scopes: out.Scopes,
		ProviderID: out.ProviderID, Status: out.Status, StatusReason: out.StatusReason}
	if out.UserCode != "" || out.VerificationURI != "" {
		if out.UserCode == "" || out.VerificationURI == "" {
			return nil, errors.New("dromos: request-connection answer has a device flow without user_code or verification_uri")
		}
		conn.Device = &DeviceCode{VerificationURI: out.VerificationURI, VerificationURIComplete: out.VerificationURIComplete,
			UserCode: out.UserCode, ExpiresIn: time.Duration(out.ExpiresIn) * time.Second, Interval: time.Duration(out.Interval) * time.Second}
	}
	return conn, nil
}

// CheckConnection reports whether the user has finished consent.
func (c *Client) CheckConnection(ctx context.Context, id string) (*Status, error) {
	p, err := connPath("/v1/check-connection", id)
	if err != nil {
		return nil, err
	}
	var s Status
	if err := c.do(ctx, call{method: http.MethodGet, route: "/v1/check-connection/{id}", path: p}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// WaitOptions tune WaitForActive. The zero value polls after 1 s, then
// 1.5 times longer each time up to 5 s.
type WaitOptions struct {
	Interval    time.Duration // first pause between polls
	MaxInterval time.Duration // longest pause
	// Progress, when set, sees every status polled, e.g. to show a
	// spinner. It runs on the calling goroutine.
	Progress func(Status)
}

// WaitForActive polls CheckConnection until the connection is active
// (nil), failed (a *FailedError, errors.Is ErrFailed), or ctx ends (the
// context's error). Gateway errors that outlive the retry policy end the
// wait too. Bound the wait with a context deadline: consent can take a
// person minutes, and a pending connection expires after ten.
func (c *Client) WaitForActive(ctx context.Context, id string, opts WaitOptions) error {
	return c.poll(ctx, id, opts, func(s *Status) (bool, error) {
		switch s.Status {
		case StatusActive:
			return true, nil
		case StatusFailed:
			return true, &FailedError{ConnectionID: id, Detail: s.Detail, Reason: s.Reason}
		}
		return false, nil
	})
}

// poll calls CheckConnection, backing off from opts.Interval to
// opts.MaxInterval, until done says the wait is over (with its error) or a
// call or ctx fails.
func (c *Client) poll(ctx context.Context, id string, opts WaitOptions, done func(*Status) (bool, error)) error {
	pause, maxPause := opts.Interval, opts.MaxInterval
	if pause <= 0 {
		pause = time.Second
	}
	if maxPause < pause {
		maxPause = max(5*time.Second, pause)
	}
	for {
		s, err := c.CheckConnection(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if opts.Progress != nil {
			opts.Progress(*s)
		}
		if over, err := done(s); over {
			return err
		}
		if err := c.sleep(ctx, pause); err != nil {
			return err
		}
		pause = min(pause*3/2, maxPause)
	}
}

// GetToken returns a currently valid access token; the broker refreshes an
// expired or nearly expired one first. ErrPending while consent is not
// finished, ErrReauthRequired when the user must connect again.
func (c *Client) GetToken(ctx context.Context, id string) (*Token, error) {
	p, err := connPath("/v1/token", id)
	if err != nil {
		return nil, err
	}
	return c.token(ctx, call{method: http.MethodGet, route: "/v1/token/{id}", path: p})
}

// Refresh forces a refresh at the provider and returns the new token, for
// when the provider refused a token that had not expired yet. Gateways
// whose broker cannot force a refresh answer 501 (ErrNotSupported).
func (c *Client) Refresh(ctx context.Context, id string) (*Token, error) {
	p, err := connPath("/v1/refresh", id)
	if err != nil {
		return nil, err
	}
	return c.token(ctx, call{method: http.MethodPost, route: "/v1/refresh/{id}", path: p})
}

func (c *Client) token(ctx context.Context, cl call) (*Token, error) {
	var raw json.RawMessage
	if err := c.do(ctx, cl, &raw); err != nil {
		return nil, err
	}
	return decodeToken(raw, c.now())
}

// DeleteConnection removes a connection and its tokens. A gateway without
// the DELETE route yields ErrNotSupported; an unknown connection
// ErrNotFound.
func (c *Client) DeleteConnection(ctx context.Context, id string) error {
	p, err := connPath("/v1/connections", id)
	if err != nil {
		return err
	}
	err = c.do(ctx, call{method: http.MethodDelete, route: "/v1/connections/{id}", path: p}, nil)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		return err
	}
	// A gateway without the route answers 404 too. The connection's own
	// status tells the two apart: if it exists, the route does not.
	if _, cerr := c.CheckConnection(ctx, id); cerr == nil {
		return fmt.Errorf("%w: the gateway has no DELETE /v1/connections/{id}", ErrNotSupported)
	}
	return err
}

// ListProviders lists the providers agents may ask for.
func (c *Client) ListProviders(ctx context.Context) ([]Provider, error) {
	var out struct {
		Providers []Provider `json:"providers"`
	}
	if err := c.do(ctx, call{method: http.MethodGet, route: "/v1/providers", path: "/v1/providers"}, &out); err != nil {
		return nil, err
	}
	return out.Providers, nil
}
