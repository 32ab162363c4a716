package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/dromos-dev/dromos/internal/agentpolicy"
	"github.com/dromos-dev/dromos/internal/connmeta"
	"github.com/dromos-dev/dromos/internal/ctrlchar"
	"github.com/dromos-dev/dromos/internal/gateway/brokerclient"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/state"
)

// Connection statuses of the frozen contract.
const (
	StatusPending = "pending"
	StatusActive  = "active"
	StatusFailed  = "failed"
)

// ConnectionRequest is what an agent asks for.
type ConnectionRequest struct {
	UserID       string
	ProviderName string
	Scopes       []string
	ReturnURL    string
	// Metadata holds one JSON value per key (limits in package connmeta).
	Metadata map[string]json.RawMessage
	// ConnectionID, when set, reconnects that (expired or failed)
	// connection under the same id instead of starting a new one; for an
	// active connection it starts a step-up: a consent for the
	// connection's scopes plus Scopes, completed under the same id.
	ConnectionID string
	// MCPServerURL replaces ProviderName for a connection to an MCP
	// server; Scopes may then be empty. Grant is authorization_code (the
	// default) or client_credentials.
	MCPServerURL string
	Grant        string
	// Credentials is the key ({"api_key"}) or {"username","password"} of
	// an api_key or basic provider; Scopes may then be empty. Never log it.
	Credentials map[string]string
	// ConfirmURL, when set, makes the connection await the application's
	// confirmation of its user (see ConfirmConnection); the agent's key
	// option require-confirmation makes it required.
	ConfirmURL          string
	RequireConfirmation bool
	// ExpectedIdentity, when set, names who should consent: another
	// account fails the connection (identity_mismatch).
	ExpectedIdentity *brokerclient.ExpectedIdentity
}

// ConnectionGrant is the answer to a ConnectionRequest. State is a bearer
// credential for the callback: never log it.
type ConnectionGrant struct {
	AuthURL      string
	ConnectionID string
	State        string
	Scopes       []string
	ProviderID   string
	// Status is active or failed (with StatusReason) for a connection
	// that needed no consent; AuthURL is then empty.
	Status       string
	StatusReason string
	// VerificationURI, VerificationURIComplete and UserCode are what the
	// person opens and types for a device flow (Status pending, AuthURL
	// empty); ExpiresIn and Interval are in seconds.
	VerificationURI         string
	VerificationURIComplete string
	UserCode                string
	ExpiresIn               int64
	Interval                int64
}

// ConnectionStatus is a connection's status in contract terms.
type ConnectionStatus struct {
	Status string // StatusPending, StatusActive or StatusFailed
	Detail string // the broker's finer status when it differs from Status
	Reason string // why it failed, when the broker said
	// ProviderData: values the provider handed over besides the token
	// that API calls need (realmId, instance_url, cloud_id, tenant_id…).
	ProviderData map[string]string
	// Metadata is what the agent gave with the request, as given.
	Metadata map[string]json.RawMessage
	// StepUp is the connection's latest step-up, nil when it had none.
	StepUp *StepUpStatus
}

// StepUpStatus is how the connection's latest step-up went.
type StepUpStatus struct {
	Status string   `json:"status"` // "pending", "completed" or "failed"
	Reason string   `json:"reason,omitempty"`
	Scopes []string `json:"scopes"`
}

// service is the one implementation of the gateway operations, called by
// both the REST handlers and the gRPC server with an authenticated Caller.
type service struct {
	broker  Broker
	states  *state.Verifier
	log     *slog.Logger
	metrics *metrics
	now     func() time.Time
	// forget drops what the API proxy holds in memory for a connection.
	forget func(c Caller, id string)
}

// Input limits. The body limit bounds the total; these keep single fields
// within what the broker and the state token accept.
const (
	maxUserID       = 255
	maxProviderName = 128
	maxScopes       = 64
	maxScopeLen     = 256
	maxReturnURL    = 2048
)

// validate says what is wrong with r, first problem first, and compacts
// r.Metadata.
func (r *ConnectionRequest) validate() error {
	switch {
	case r.UserID == "":
		return httpapi.BadRequest("user_id is required")
	case len(r.UserID) > maxUserID:
		return httpapi.BadRequest("user_id must be at most %d bytes", maxUserID)
	case ctrlchar.Index(r.UserID) >= 0:
		return httpapi.BadRequest("%s", ctrlchar.Check("user_id", r.UserID))
	case r.ProviderName == "" && r.MCPServerURL == "":
		return httpapi.BadRequest("provider_name is required (or mcp_server_url)")
	case r.ProviderName != "" && r.MCPServerURL != "":
		return httpapi.BadRequest("give provider_name or mcp_server_url, not both")
	case len(r.ProviderName) > maxProviderName:
		return httpapi.BadRequest("provider_name must be at most %d bytes", maxProviderName)
	case ctrlchar.Index(r.ProviderName) >= 0:
		return httpapi.BadRequest("%s", ctrlchar.Check("provider_name", r.ProviderName))
	case r.MCPServerURL != "" && !validServerURL(r.MCPServerURL):
		return httpapi.BadRequest("mcp_server_url must be an absolute http or https URL of at most %d bytes", maxReturnURL)
	case r.Grant != "" && r.Grant != "authorization_code" && r.Grant != "client_credentials":
		return httpapi.BadRequest("grant must be authorization_code or client_credentials")
	case r.Grant != "" && r.MCPServerURL == "":
		return httpapi.BadRequest("grant is for mcp_server_url connections")
	case r.Credentials != nil && r.MCPServerURL != "":
		return httpapi.BadRequest("credentials are for api_key and basic providers, not mcp_server_url")
	case r.Scopes == nil && r.MCPServerURL == "" && r.Credentials == nil:
		return httpapi.BadRequest("scopes is required")
	case len(r.Scopes) == 0 && r.MCPServerURL == "" && r.Credentials == nil:
		return httpapi.BadRequest("scopes must not be empty")
	case len(r.Scopes) > maxScopes:
		return httpapi.BadRequest("at most %d scopes", maxScopes)
	case r.ReturnURL == "":
		return httpapi.BadRequest("return_url is required")
	case r.ConnectionID != "" && !canonicalUUID(r.ConnectionID):
		return httpapi.BadRequest("connection_id must be a lower-case UUID")
	}
	for i, s := range r.Scopes {
		if !scopeToken(s) {
			return httpapi.BadRequest("scopes[%d] is not an OAuth scope token (1-%d visible ASCII characters, no space, quote or backslash)", i, maxScopeLen)
		}
	}
	if err := ctrlchar.Check("return_url", r.ReturnURL); err != nil {
		return httpapi.BadRequest("%s", err)
	}
	if u, err := url.Parse(r.ReturnURL); len(r.ReturnURL) > maxReturnURL || err != nil ||
		(u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return httpapi.BadRequest("return_url must be an absolute http or https URL of at most %d bytes", maxReturnURL)
	}
	if err := r.validateConfirmURL(); err != nil {
		return err
	}
	meta, err := connmeta.Normalize(r.Metadata)
	if err != nil {
		return httpapi.BadRequest("%s", err)
	}
	r.Metadata = meta
	return nil
}

func validServerURL(s string) bool {
	u, err := url.Parse(s)
	return len(s) <= maxReturnURL && err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil && u.Fragment == "" &&
		ctrlchar.Index(s) < 0
}

// scopeToken follows RFC 6749 §3.3: scope-token = 1*NQCHAR.
func scopeToken(s string) bool {
	if s == "" || len(s) > maxScopeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// canonicalUUID reports whether s is a UUID in lower-case 8-4-4-4-12 form,
// the only form the broker issues. Anything else is refused before a broker
// URL is built from it.
func canonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

func checkConnectionID(id string) error {
	if !canonicalUUID(id) {
		return httpapi.BadRequest("connection_id must be a lower-case UUID")
	}
	return nil
}

// errUnverifiedState is the agent-facing answer when the broker's consent
// cannot be trusted; the agent gets no part of it.
func errUnverifiedState(cause error) error {
	return httpapi.BadGateway(brokerclient.CodeBrokerError, "the broker's answer could not be verified", cause)
}

// RequestConnection starts a connection at the broker and returns its
// consent URL, but only after verifying that the state the broker signed
// names the connection id it returned: an id the gateway could not verify
// is never handed to an agent.
func (s *service) RequestConnection(ctx context.Context, c Caller, r ConnectionRequest) (ConnectionGrant, error) {
	if err := r.validate(); err != nil {
		return ConnectionGrant{}, err
	}
	if err := checkPolicy(c.Policy, r); err != nil {
		return ConnectionGrant{}, err
	}
	consent, err := s.broker.ConsentSpec(ctx, brokerclient.ConsentRequest{
		WorkspaceID:  c.workspace(),
		UserID:       r.UserID,
		ClientName:   c.Name,
		ProviderName: r.ProviderName,
		Scopes:       r.Scopes,
		ReturnURL:    r.ReturnURL,
		Metadata:     r.Metadata,
		ConnectionID: r.ConnectionID,
		MCPServerURL: r.MCPServerURL,
		Grant:        r.Grant,
		Credentials:  r.Credentials,
		ConfirmURL:   r.ConfirmURL,
		// The key's option cannot be waived by the request.
		RequireConfirmation: r.RequireConfirmation || c.Policy.RequireConfirmation,
		ExpectedIdentity:    r.ExpectedIdentity,
	})
	if err != nil {
		return ConnectionGrant{}, err
	}
	payload, err := s.states.Verify(consent.State)
	if err != nil {
		// state's errors never contain the token.
		return ConnectionGrant{}, errUnverifiedState(fmt.Errorf("consent state: %w", err))
	}
	switch {
	case payload.ConnectionID != consent.ConnectionID:
		return ConnectionGrant{}, errUnverifiedState(errors.New("consent state names another connection"))
	case payload.WorkspaceID != c.workspace():
		return ConnectionGrant{}, errUnverifiedState(errors.New("consent state names another workspace"))
	case payload.ProviderID != consent.ProviderID:
		return ConnectionGrant{}, errUnverifiedState(errors.New("consent state names another provider"))
	case r.ConnectionID != "" && consent.ConnectionID != r.ConnectionID:
		return ConnectionGrant{}, errUnverifiedState(errors.New("reconnect answered with another connection"))
	case !canonicalUUID(consent.ConnectionID):
		return ConnectionGrant{}, errUnverifiedState(errors.New("consent connection id is not a canonical UUID"))
	case !absoluteHTTP(consent.AuthURL) && !(consent.AuthURL == "" && (r.Grant == "client_credentials" || noConsent(consent.Status) || deviceFlow(consent))):
		// A client_credentials or key connection has no consent and so no authUrl.
		return ConnectionGrant{}, errUnverifiedState(errors.New("consent authUrl is not an absolute http(s) URL"))
	}
	scopes := consent.Scopes
	if scopes == nil {
		scopes = r.Scopes
	}
	s.log.DebugContext(ctx, "connection requested", "client", c.Name, "connection_id", consent.ConnectionID,
		"provider_id", consent.ProviderID)
	return ConnectionGrant{
		AuthURL:      consent.AuthURL,
		ConnectionID: consent.ConnectionID,
		State:        consent.State,
		Scopes:       scopes,
		ProviderID:   consent.ProviderID,
		Status:       consent.Status,
		StatusReason: consent.StatusReason,

		VerificationURI:         consent.VerificationURI,
		VerificationURIComplete: consent.VerificationURIComplete,
		UserCode:                consent.UserCode,
		ExpiresIn:               consent.ExpiresIn,
		Interval:                consent.Interval,
	}, nil
}

// deviceFlow reports whether the broker started a device flow: a pending
// connection the person finishes at verification_uri with user_code.
func deviceFlow(c brokerclient.Consent) bool {
	return c.Status == StatusPending && absoluteHTTP(c.VerificationURI) && c.UserCode != ""
}

// checkPolicy refuses a request outside the providers and scopes the
// agent's key configuration allows, before the broker hears of it.
func checkPolicy(p agentpolicy.Policy, r ConnectionRequest) error {
	if len(p.Providers) > 0 {
		if r.MCPServerURL != "" {
			return &httpapi.Error{Status: http.StatusBadRequest, Code: httpapi.CodeProviderNotAllowed,
				Message: "this agent may only connect to the providers its key configuration lists, not to MCP servers by URL"}
		}
		if !p.AllowsProvider(r.ProviderName) {
			return &httpapi.Error{Status: http.StatusBadRequest, Code: httpapi.CodeProviderNotAllowed,
				Message: fmt.Sprintf("provider %q is not among the providers this agent may connect to", r.ProviderName)}
		}
	}
	if bad := p.DisallowedScopes(r.Scopes); len(bad) > 0 {
		return &httpapi.Error{Status: http.StatusBadRequest, Code: httpapi.CodeScopeNotAllowed,
			Message: fmt.Sprintf("scope %q is not among the scopes this agent may ask for", bad[0])}
	}
	return nil
}

// noConsent reports whether the broker made the connection without a
// consent (a submitted key, a client_credentials provider): it is then
// active or already failed, and has no authUrl.
func noConsent(status string) bool { return status == StatusActive || status == StatusFailed }

func absoluteHTTP(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// CheckConnection maps the broker's status onto the contract's three.
func (s *service) CheckConnection(ctx context.Context, c Caller, id string) (ConnectionStatus, error) {
	conn, err := s.ownConnection(ctx, c, id)
	if err != nil {
		return ConnectionStatus{}, err
	}
	return statusOf(conn)
}

// ownConnection reads the caller's connection id from the broker; another
// client's connection is not found.
func (s *service) ownConnection(ctx context.Context, c Caller, id string) (brokerclient.Connection, error) {
	if err := checkConnectionID(id); err != nil {
		return brokerclient.Connection{}, err
	}
	conn, err := s.broker.Connection(ctx, id, c.Name)
	if err != nil {
		return brokerclient.Connection{}, err
	}
	if conn.ConnectionID != "" && conn.ConnectionID != id {
		return brokerclient.Connection{}, httpapi.BadGateway(brokerclient.CodeBrokerError, "the broker answered for another connection",
			errors.New("broker get_connection: connection id mismatch"))
	}
	return conn, nil
}

// statusOf is a broker connection's status in contract terms.
func statusOf(conn brokerclient.Connection) (ConnectionStatus, error) {
	var out ConnectionStatus
	switch conn.Status {
	case "pending", "exchanging", "awaiting_confirmation":
		out.Status = StatusPending
	case "active":
		out.Status = StatusActive
	case "failed", "expired", "revoked":
		out.Status = StatusFailed
	default:
		return ConnectionStatus{}, httpapi.BadGateway(brokerclient.CodeBrokerError, "the broker reported an unknown connection status",
			fmt.Errorf("broker get_connection: unknown status %q", conn.Status))
	}
	if conn.Status != out.Status {
		out.Detail = conn.Status
	}
	out.Reason = conn.StatusReason
	out.ProviderData = conn.ProviderData
	if len(conn.Metadata) > 0 {
		out.Metadata = conn.Metadata
	}
	if su := conn.StepUp; su != nil {
		switch su.Status {
		case "pending", "completed", "failed":
		default:
			return ConnectionStatus{}, httpapi.BadGateway(brokerclient.CodeBrokerError, "the broker reported an unknown step-up status",
				fmt.Errorf("broker get_connection: unknown step-up status %q", su.Status))
		}
		out.StepUp = &StepUpStatus{Status: su.Status, Reason: su.Reason, Scopes: su.Scopes}
		if out.StepUp.Scopes == nil {
			out.StepUp.Scopes = []string{}
		}
	}
	return out, nil
}

// errProxyOnly is the answer to a token read or refresh by an agent whose
// key configuration says proxy-only.
func errProxyOnly() error {
	return &httpapi.Error{Status: http.StatusForbidden, Code: httpapi.CodeProxyOnly,
		Message: "this agent is proxy-only: it calls provider APIs through /v1/proxy/{connection_id}/ and never receives tokens"}
}

// Token returns a currently valid token for the caller's connection.
func (s *service) Token(ctx context.Context, c Caller, id string) (brokerclient.Token, error) {
	if c.Policy.ProxyOnly {
		return brokerclient.Token{}, errProxyOnly()
	}
	if err := checkConnectionID(id); err != nil {
		return brokerclient.Token{}, err
	}
	return s.broker.TokenWith(ctx, id, c.Name, brokerclient.TokenOptions{IDToken: c.Policy.IDToken})
}

// Refresh forces a provider refresh for the caller's connection.
func (s *service) Refresh(ctx context.Context, c Caller, id string) (brokerclient.Token, error) {
	if c.Policy.ProxyOnly {
		return brokerclient.Token{}, errProxyOnly()
	}
	if err := checkConnectionID(id); err != nil {
		return brokerclient.Token{}, err
	}
	start := s.now()
	t, err := s.broker.RefreshWith(ctx, id, c.Name, brokerclient.TokenOptions{IDToken: c.Policy.IDToken})
	s.metrics.refreshed(refreshResult(err), s.now().Sub(start))
	return t, err
}

// DeleteConnection deletes the caller's connection.
func (s *service) DeleteConnection(ctx context.Context, c Caller, id string) error {
	if err := checkConnectionID(id); err != nil {
		return err
	}
	err := s.broker.DeleteConnection(ctx, id, c.Name)
	if s.forget != nil {
		s.forget(c, id)
	}
	return err
}

// refreshResult is a bounded label for token_refresh_total.
func refreshResult(err error) string {
	if err == nil {
		return "ok"
	}
	if e, ok := httpapi.As(err); ok {
		switch e.Code {
		case httpapi.CodeNotFound, httpapi.CodeNotReady, httpapi.CodeReauthRequired, httpapi.CodeNotImplemented,
			httpapi.CodeUnavailable, httpapi.CodeProviderError, brokerclient.CodeBrokerError:
			return e.Code
		}
	}
	return "error"
}

// CatalogItem is a provider template as agents see it.
type CatalogItem struct {
	Name, DisplayName, DocsURL string
	TemplateParams             []string
	Configured                 bool
}

// Catalog lists the broker's provider templates.
func (s *service) Catalog(ctx context.Context) ([]CatalogItem, error) {
	entries, err := s.broker.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]CatalogItem, len(entries))
	for i, e := range entries {
		params := make([]string, len(e.TemplateParams))
		for j, p := range e.TemplateParams {
			params[j] = p.Name
		}
		out[i] = CatalogItem{Name: e.Name, DisplayName: e.DisplayName, DocsURL: e.DocsURL, TemplateParams: params, Configured: e.Configured}
	}
	return out, nil
}

// Providers lists the providers agents may ask for, without anything an
// agent has no use for.
func (s *service) Providers(ctx context.Context) ([]brokerclient.Provider, error) {
	ps, err := s.broker.Providers(ctx)
	if err != nil {
		return nil, err
	}
	for i := range ps {
		if ps[i].Scopes == nil {
			ps[i].Scopes = []string{}
		}
	}
	if ps == nil {
		ps = []brokerclient.Provider{}
	}
	return ps, nil
}
