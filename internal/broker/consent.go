package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dromos-dev/dromos/internal/connmeta"
	"github.com/dromos-dev/dromos/internal/ctrlchar"
	"github.com/dromos-dev/dromos/internal/expectid"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/mcp"
	"github.com/dromos-dev/dromos/internal/mcpconnect"
	"github.com/dromos-dev/dromos/internal/pkce"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/registry"
	"github.com/dromos-dev/dromos/internal/scopeallow"
	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
)

type consentRequest struct {
	WorkspaceID  string   `json:"workspace_id"`
	UserID       string   `json:"user_id"`
	ClientName   string   `json:"client_name"`
	ProviderID   string   `json:"provider_id"`
	ProviderName string   `json:"provider_name"`
	Scopes       []string `json:"scopes"`
	ReturnURL    string   `json:"return_url"`
	// Metadata holds one JSON value per key (package connmeta).
	Metadata map[string]json.RawMessage `json:"metadata"`
	// ConnectionID reconnects an existing connection (one that is expired,
	// failed or revoked) under the same id instead of creating a new one.
	ConnectionID string `json:"connection_id"`
	// MCPServerURL connects to an MCP server by its URL instead of a
	// registered provider (see internal/mcpconnect).
	MCPServerURL string `json:"mcp_server_url"`
	// Grant is authorization_code (default) or, for MCP servers,
	// client_credentials.
	Grant string `json:"grant"`
	// Credentials is the key ({"api_key"}) or user/password pair of an
	// api_key or basic provider (package credential). Never log it.
	Credentials map[string]string `json:"credentials"`
	// ConfirmURL, when set, makes the connection await its user's
	// confirmation after the exchange (package confirm); the browser goes
	// there instead of return_url. RequireConfirmation without it is an
	// error: the gateway sets it for agents whose key requires it.
	ConfirmURL          string `json:"confirm_url"`
	RequireConfirmation bool   `json:"require_confirmation"`
	// ExpectedIdentity, when set, names who should consent (package
	// expectid): another account fails the connection.
	ExpectedIdentity *expectid.Identity `json:"expected_identity"`
}

type consentResponse struct {
	AuthURL      string    `json:"authUrl"`
	State        string    `json:"state"`
	Scopes       []string  `json:"scopes"`
	ProviderID   string    `json:"provider_id"`
	ConnectionID string    `json:"connection_id"`
	ExpiresAt    time.Time `json:"expires_at"`
	// Status is set when the connection needed no consent (client
	// credentials, a submitted key): active, or failed with StatusReason.
	Status       string `json:"status,omitempty"`
	StatusReason string `json:"status_reason,omitempty"`
	// The device flow's answer (RFC 8628 §3.2), set instead of AuthURL
	// for an oauth2_device_code provider: what the person opens and types.
	// The device code itself never leaves the broker.
	VerificationURI         string `json:"verification_uri,omitempty"`
	VerificationURIComplete string `json:"verification_uri_complete,omitempty"`
	UserCode                string `json:"user_code,omitempty"`
	ExpiresIn               int64  `json:"expires_in,omitempty"`
	Interval                int64  `json:"interval,omitempty"`
}

const (
	maxIDLen = 256
	// maxWorkspaceLen is what the signed state can carry.
	maxWorkspaceLen = state.MaxFieldLen
	maxScopes       = 100
	maxScopeLen     = 256
	maxReturnURLen  = 2048
)

func (req *consentRequest) validate() error {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	req.WorkspaceID = strings.TrimSpace(req.WorkspaceID)
	if req.WorkspaceID == "" || len(req.WorkspaceID) > maxWorkspaceLen {
		add("workspace_id is required (at most %d characters)", maxWorkspaceLen)
	}
	if len(req.UserID) > maxIDLen || len(req.ClientName) > maxIDLen {
		add("user_id and client_name are at most %d characters", maxIDLen)
	}
	for _, f := range []struct{ name, val string }{
		{"workspace_id", req.WorkspaceID}, {"user_id", req.UserID}, {"client_name", req.ClientName},
		{"provider_id", req.ProviderID}, {"provider_name", req.ProviderName}, {"return_url", req.ReturnURL},
		{"mcp_server_url", req.MCPServerURL}, {"grant", req.Grant},
	} {
		if err := ctrlchar.Check(f.name, f.val); err != nil {
			add("%s", err)
		}
	}
	named := 0
	for _, v := range []string{req.ProviderID, strings.TrimSpace(req.ProviderName), strings.TrimSpace(req.MCPServerURL)} {
		if v != "" {
			named++
		}
	}
	switch {
	case named == 0:
		add("provider_id, provider_name or mcp_server_url is required")
	case named > 1:
		add("give only one of provider_id, provider_name and mcp_server_url")
	}
	if len(req.MCPServerURL) > maxReturnURLen {
		add("mcp_server_url is at most %d characters", maxReturnURLen)
	}
	if req.Grant != "" && req.MCPServerURL == "" {
		add("grant is for mcp_server_url connections")
	}
	if req.Credentials != nil && req.MCPServerURL != "" {
		add("credentials are for api_key and basic providers, not mcp_server_url")
	}
	if len(req.Scopes) > maxScopes {
		add("at most %d scopes", maxScopes)
	}
	for _, s := range req.Scopes {
		if !validScope(s) {
			add("scope %q is not a valid OAuth scope token", truncate(s, 64))
			break
		}
	}
	if req.ReturnURL == "" {
		add("return_url is required")
	}
	if meta, err := connmeta.Normalize(req.Metadata); err != nil {
		add("%s", err)
	} else {
		req.Metadata = meta
	}
	for _, k := range slices.Sorted(maps.Keys(req.Metadata)) {
		// DataKey also knows the keys older releases kept provider data
		// under; an agent's label must never read as the provider's.
		if _, ok := provider.DataKey(k); ok {
			add("metadata key %q is reserved: keys starting with %q (and callback.realmId, callback.shop) hold provider data",
				truncate(k, 64), provider.ProviderDataPrefix)
			break
		}
	}
	if len(probs) > 0 {
		return httpapi.BadRequest("%s", strings.Join(probs, "; "))
	}
	return nil
}

// validScope follows RFC 6749 §3.3: printable ASCII but space, '"' and '\'.
func validScope(s string) bool {
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

// checkAllowedScopes refuses scopes outside the provider's allowed_scopes,
// before anything is stored or signed. It covers new consents, reconnects
// and step-ups alike: all ask through the consent API. Scopes the broker
// adds itself (openid to re-prove a bound account) are not the agent's
// request and are not checked.
func checkAllowedScopes(prov registry.Provider, asked []string) error {
	d := scopeallow.Disallowed(prov.Profile.AllowedScopes, asked)
	if len(d) == 0 {
		return nil
	}
	const shown = 10
	var named []string
	for _, s := range d[:min(len(d), shown)] {
		named = append(named, strconv.Quote(s))
	}
	if len(d) > shown {
		named = append(named, fmt.Sprintf("and %d more", len(d)-shown))
	}
	return &httpapi.Error{Status: http.StatusBadRequest, Code: httpapi.CodeScopeNotAllowed,
		Message: fmt.Sprintf("provider %q does not allow scope %s (its allowed_scopes)", prov.Row.Name, strings.Join(named, ", "))}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (b *Broker) consentSpec(w http.ResponseWriter, r *http.Request) error {
	var req consentRequest
	if err := httpapi.DecodeJSON(w, r, &req, httpapi.MaxBody); err != nil {
		return err
	}
	if err := requireOwner(r, req.ClientName); err != nil {
		return err
	}
	if b.consentLimited(w, r, req.ClientName) {
		return nil
	}
	if err := req.validate(); err != nil {
		return err
	}
	if err := b.checkReturnURL(req.ReturnURL); err != nil {
		return err
	}
	if err := b.checkConfirmURL(&req); err != nil {
		return err
	}
	var expected expectid.Identity
	if req.ExpectedIdentity != nil {
		if expected = *req.ExpectedIdentity; expected.Validate() != nil {
			return httpapi.BadRequest("%s", expected.Validate())
		}
	}
	if req.MCPServerURL != "" {
		if b.mcp == nil {
			return &httpapi.Error{Status: http.StatusNotImplemented, Code: httpapi.CodeNotImplemented, Message: "MCP connections are not enabled in this broker"}
		}
		if err := b.checkStepUp(r.Context(), req); err != nil {
			return err
		}
		t, err := b.mcp.Resolve(r.Context(), req.MCPServerURL, req.Grant)
		if err != nil {
			return mcpconnect.HTTPError(err)
		}
		req.ProviderID = t.ProviderID
		if req.Grant == mcpconnect.GrantClientCredentials {
			return b.machineConnection(w, r, req)
		}
	}
	prov, err := b.providers.Lookup(r.Context(), req.ProviderID, strings.ToLower(strings.TrimSpace(req.ProviderName)))
	if err != nil {
		return err
	}
	if err := checkAllowedScopes(prov, req.Scopes); err != nil {
		return err
	}
	if handled, err := b.connectByMode(w, r, req, prov); handled {
		return err
	}
	scopes := req.Scopes
	if len(scopes) == 0 {
		scopes = prov.Profile.Scopes
	}
	ends, err := b.providers.Endpoints(r.Context(), prov)
	if err != nil {
		return err
	}

	if req.ConnectionID != "" {
		// An active connection of the caller gets more scopes instead.
		if handled, err := b.stepUpConsent(w, r, req, prov, ends); handled {
			return err
		}
	}
	var prev *storage.Connection
	if req.ConnectionID != "" {
		c, err := b.reconnectable(r.Context(), req, prov.Row.ID)
		if err != nil {
			return err
		}
		prev = &c
	}
	connID, err := uuid.NewRandomFromReader(b.randReader())
	if err != nil {
		return err
	}
	id := connID.String()
	if prev != nil {
		id = prev.ID
	}
	verifier, err := pkce.NewVerifier(b.randReader())
	if err != nil {
		return err
	}
	sealedVerifier, err := b.vault.Seal([]byte(verifier), tokenset.VerifierAAD(id))
	if err != nil {
		return err
	}
	if !expected.IsZero() && !slices.Contains(scopes, "openid") {
		// Only a verified id_token tells which account consented.
		scopes = append(slices.Clone(scopes), "openid")
	}
	if prev != nil && prev.Subject != "" && !slices.Contains(scopes, "openid") {
		// The connection is bound to an account proven by an id_token; a
		// reconnect must prove the same account again, so it asks for one.
		scopes = append(slices.Clone(scopes), "openid")
	}
	openid := slices.Contains(scopes, "openid")
	if openid && (ends.Issuer == "" || ends.JWKS == "") {
		// The callback could only fail after the user consented and the
		// code was spent: say so now.
		return httpapi.BadRequest("provider %q cannot verify id_tokens (it has no issuer and JWKS): ask without openid, or register it with an issuer (discovery) or issuer and jwks_url", prov.Row.Name)
	}
	var nonce string
	if openid {
		if nonce, err = pkce.NewVerifier(b.randReader()); err != nil {
			return err
		}
	}
	now := b.now().UTC()
	expires := now.Add(b.cfg.ConsentTTL)
	if prev != nil && expires.Unix() <= prev.ExpiresAt.Unix() {
		// The state's expiry tells attempts of one connection apart
		// (sameFlow), to the second: a new attempt must not share it.
		expires = time.Unix(prev.ExpiresAt.Unix()+1, 0).UTC()
	}
	st, err := b.state.Sign(state.Payload{ConnectionID: id, WorkspaceID: req.WorkspaceID, ProviderID: prov.Row.ID,
		Nonce: nonce, IssuedAt: now, ExpiresAt: expires})
	if err != nil {
		return err
	}
	// The agent gets the broker's start link, which binds the browser and
	// only then builds the provider's request (pushing it when the
	// provider wants that); only without browser binding is the
	// provider's URL handed out directly.
	authURL := b.startURL(st)
	if b.cfg.InsecureSkipBrowserBinding {
		authURL, err = b.providerAuthURL(r.Context(), prov, ends, provider.AuthRequest{
			ClientID: prov.Profile.ClientID, RedirectURI: b.RedirectURI(), Scopes: scopes,
			State: st, Nonce: nonce, CodeChallenge: pkce.ChallengeS256(verifier), LoginHint: expected.LoginHint(),
		})
		if err != nil {
			return fmt.Errorf("building authorization URL: %w", err)
		}
	}
	conn := storage.Connection{
		ID: id, WorkspaceID: req.WorkspaceID, UserID: req.UserID, ClientName: req.ClientName,
		ProviderID: prov.Row.ID, ProviderName: prov.Row.Name, Scopes: scopes, ReturnURL: req.ReturnURL,
		Metadata: req.Metadata, Status: storage.StatusPending, Nonce: nonce, PKCEVerifier: sealedVerifier,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: expires, ConfirmURL: req.ConfirmURL,
		ExpectedIdentity: expected.Encode(),
	}
	if prev != nil {
		if err := b.restartConsent(r.Context(), conn); err != nil {
			return err
		}
	} else if err := b.createPending(r.Context(), conn); err != nil {
		return err
	}
	b.m.consents.Inc()
	if openid {
		b.m.consentsOpenID.Inc()
	}
	b.audit(r, storage.AuditEvent{Type: "consent.created", ConnectionID: id, ProviderID: prov.Row.ID, Actor: req.ClientName,
		Detail: map[string]string{"workspace_id": req.WorkspaceID, "scopes": strings.Join(scopes, " ")}})
	b.log.InfoContext(r.Context(), "consent created", "connection_id", id, "provider", prov.Row.Name)
	if scopes == nil {
		scopes = []string{}
	}
	httpapi.WriteJSON(w, http.StatusOK, consentResponse{AuthURL: authURL, State: st, Scopes: scopes,
		ProviderID: prov.Row.ID, ConnectionID: id, ExpiresAt: expires})
	return nil
}

// createPending stores a new pending connection, within the client's cap
// on pending connections (MaxPendingPerClient): expired consents turn into
// rows an agent could otherwise pile up without bound.
func (b *Broker) createPending(ctx context.Context, conn storage.Connection) error {
	if b.cfg.MaxPendingPerClient <= 0 {
		return b.store.CreateConnection(ctx, conn)
	}
	err := b.store.CreatePendingConnection(ctx, conn, b.cfg.MaxPendingPerClient)
	if errors.Is(err, storage.ErrLimitReached) {
		// A consent waits at most ConsentTTL; one of them frees a place
		// within that time, usually much sooner.
		return &httpapi.Error{Status: http.StatusTooManyRequests, Code: httpapi.CodeTooManyPending,
			Message: fmt.Sprintf("this client already has %d connections waiting for consent (MAX_PENDING_PER_CLIENT); finish or let some expire first",
				b.cfg.MaxPendingPerClient), RetryAfter: time.Minute}
	}
	return err
}

var errNotReconnectable = errors.New("connection cannot be reconnected")

// reconnectable checks that req may reconnect the named connection: it
// exists, belongs to the same client, workspace and provider, and needs a
// new consent.
func (b *Broker) reconnectable(ctx context.Context, req consentRequest, providerID string) (storage.Connection, error) {
	if _, err := uuid.Parse(req.ConnectionID); err != nil || len(req.ConnectionID) != 36 {
		return storage.Connection{}, httpapi.NotFound("connection")
	}
	c, err := b.store.GetConnection(ctx, req.ConnectionID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && (c.ClientName != req.ClientName || c.WorkspaceID != req.WorkspaceID)) {
		return storage.Connection{}, httpapi.NotFound("connection")
	}
	if err != nil {
		return storage.Connection{}, err
	}
	if c.ProviderID != providerID {
		return storage.Connection{}, httpapi.BadRequest("connection_id belongs to another provider")
	}
	switch c.Status {
	case storage.StatusExpired, storage.StatusFailed, storage.StatusRevoked:
		return c, nil
	default:
		return storage.Connection{}, httpapi.Conflict("not_reconnectable", "connection is %s: only expired, failed or revoked connections can be reconnected", c.Status)
	}
}

// restartConsent puts an existing connection back to pending for a new
// consent, keeping its id and the identity it was bound to (the callback
// refuses a different account).
func (b *Broker) restartConsent(ctx context.Context, fresh storage.Connection) error {
	_, err := b.store.UpdateConnection(ctx, fresh.ID, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		switch c.Status {
		case storage.StatusExpired, storage.StatusFailed, storage.StatusRevoked:
		default:
			return c, storage.TokenChange{}, errNotReconnectable
		}
		c.Status, c.StatusReason, c.Nonce, c.PKCEVerifier = storage.StatusPending, "", fresh.Nonce, fresh.PKCEVerifier
		c.Scopes, c.ReturnURL, c.Metadata, c.UserID = fresh.Scopes, fresh.ReturnURL, fresh.Metadata, fresh.UserID
		c.ExpiresAt, c.UpdatedAt = fresh.ExpiresAt, fresh.UpdatedAt
		c.ConfirmURL, c.ConfirmationHash, c.ConfirmationExpiresAt = fresh.ConfirmURL, "", time.Time{}
		c.ExpectedIdentity = fresh.ExpectedIdentity
		c.LastErrorClass, c.NextRefreshAt, c.RefreshLeaseOwner, c.RefreshLeaseUntil = "", time.Time{}, "", time.Time{}
		return c, storage.TokenChange{Delete: true}, nil
	})
	if errors.Is(err, errNotReconnectable) {
		return httpapi.Conflict("not_reconnectable", "connection changed while reconnecting; try again")
	}
	return err
}

// checkStepUp refuses a step-up on an MCP connection that asks for no
// scope the connection lacks: the server is looping (it refuses a token
// that already carries what it asks for), and another consent would only
// bring the same answer. Nothing changes on the connection.
func (b *Broker) checkStepUp(ctx context.Context, req consentRequest) error {
	if req.ConnectionID == "" {
		return nil
	}
	c, err := b.store.GetConnection(ctx, req.ConnectionID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && (c.ClientName != req.ClientName || c.WorkspaceID != req.WorkspaceID)) {
		return httpapi.NotFound("connection")
	}
	if err != nil {
		return err
	}
	if c.Status == storage.StatusActive && mcpconnect.StepUpLoops(c.Scopes, req.Scopes) {
		return &httpapi.Error{Status: http.StatusBadRequest, Code: mcp.CodeStepUpLoop,
			Message: "the connection already holds every scope asked for: the MCP server refuses a token that has what it asks for, so another consent would loop"}
	}
	return nil
}
