package broker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dromos-dev/dromos/internal/connmeta"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/pagecursor"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/refresh"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
)

type connectionView struct {
	ConnectionID string   `json:"connection_id"`
	Status       string   `json:"status"`
	StatusReason string   `json:"status_reason,omitempty"`
	WorkspaceID  string   `json:"workspace_id"`
	UserID       string   `json:"user_id,omitempty"`
	ClientName   string   `json:"client_name,omitempty"`
	ProviderID   string   `json:"provider_id"`
	Provider     string   `json:"provider"`
	Scopes       []string `json:"scopes"`
	// Metadata is the agent's, one JSON value per key as it was given.
	Metadata map[string]json.RawMessage `json:"metadata"`
	// ProviderData holds what the provider handed over besides the token
	// (QuickBooks realmId, Salesforce instance_url, Atlassian cloud ids…),
	// stored as metadata under provider.ProviderDataPrefix.
	ProviderData   map[string]string `json:"provider_data,omitempty"`
	Subject        string            `json:"subject,omitempty"`
	Email          string            `json:"email,omitempty"`
	Issuer         string            `json:"issuer,omitempty"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
	ExpiresAt      *time.Time        `json:"expires_at,omitempty"`
	LastRefreshAt  *time.Time        `json:"last_refresh_at,omitempty"`
	NextRefreshAt  *time.Time        `json:"next_refresh_at,omitempty"`
	LastErrorClass string            `json:"last_error_class,omitempty"`
	// TokenExpiresAt and TokenExpirySource describe the stored access
	// token: when it expires and how that was learned (LIFECYCLE.md).
	TokenExpiresAt    *time.Time `json:"token_expires_at,omitempty"`
	TokenExpirySource string     `json:"token_expiry_source,omitempty"`
	// StepUp is the connection's latest step-up, when it had one.
	StepUp *stepUpView `json:"step_up,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func viewConnection(c storage.Connection) connectionView {
	v := connectionView{
		ConnectionID: c.ID, Status: string(c.Status), StatusReason: c.StatusReason, WorkspaceID: c.WorkspaceID,
		UserID: c.UserID, ClientName: c.ClientName, ProviderID: c.ProviderID, Provider: c.ProviderName,
		Scopes: c.Scopes, Subject: c.Subject, Email: c.Email, Issuer: c.Issuer,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, LastRefreshAt: timePtr(c.LastRefreshAt),
		NextRefreshAt: timePtr(c.NextRefreshAt), LastErrorClass: c.LastErrorClass,
	}
	if c.Status == storage.StatusPending {
		v.ExpiresAt = timePtr(c.ExpiresAt)
	}
	if v.Scopes == nil {
		v.Scopes = []string{}
	}
	v.Metadata = make(map[string]json.RawMessage, len(c.Metadata))
	for k, val := range c.Metadata {
		if name, ok := provider.DataKey(k); ok {
			if v.ProviderData == nil {
				v.ProviderData = map[string]string{}
			}
			// The broker writes provider data as JSON strings only.
			if str, ok := connmeta.AsString(val); ok {
				v.ProviderData[name] = str
			}
		} else {
			v.Metadata[k] = val
		}
	}
	return v
}

// loadConnection finds the connection named in the path and its token row
// (nil when none), in one query, applying the optional client_name
// ownership filter: another client's connection is reported as not found,
// so its existence is not disclosed.
func (b *Broker) loadConnection(r *http.Request) (storage.Connection, *storage.Token, error) {
	return b.loadConnectionQuery(r, r.URL.Query())
}

// loadConnectionQuery is loadConnection with the request's query already
// parsed, for handlers that read it themselves.
func (b *Broker) loadConnectionQuery(r *http.Request, q url.Values) (storage.Connection, *storage.Token, error) {
	if err := requireOwner(r, q.Get("client_name")); err != nil {
		return storage.Connection{}, nil, err
	}
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return storage.Connection{}, nil, httpapi.NotFound("connection")
	}
	c, tok, err := b.store.GetConnectionToken(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Connection{}, nil, httpapi.NotFound("connection")
	}
	if err != nil {
		return storage.Connection{}, nil, err
	}
	if q.Has("client_name") && q.Get("client_name") != c.ClientName {
		return storage.Connection{}, nil, httpapi.NotFound("connection")
	}
	return c, tok, nil
}

// requireOwner refuses a gateway call (one carrying httpapi.GatewayHeader)
// that names no owner: without one the broker would apply no ownership
// check at all and serve any agent's connection. Operators calling the
// broker directly keep their unfiltered view.
func requireOwner(r *http.Request, owner string) error {
	if r.Header.Get(httpapi.GatewayHeader) == "" || owner != "" {
		return nil
	}
	return &httpapi.Error{Status: http.StatusForbidden, Code: httpapi.CodeOwnerRequired,
		Message: "a gateway call must name the connection's owner (client_name); the broker serves no gateway call without one"}
}

func (b *Broker) getConnection(w http.ResponseWriter, r *http.Request) error {
	c, tok, err := b.loadConnection(r)
	if err != nil {
		return err
	}
	if lapsed, ok := b.lapseConfirmation(r, c); ok {
		c, tok = lapsed, nil
	}
	v := viewConnection(c)
	if tok != nil {
		v.TokenExpiresAt, v.TokenExpirySource = timePtr(tok.ExpiresAt), tok.ExpirySource
	}
	if v.StepUp, err = b.viewStepUp(r.Context(), c.ID); err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, v)
	return nil
}

func (b *Broker) listConnections(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := requireOwner(r, q.Get("client_name")); err != nil {
		return err
	}
	f := storage.ConnectionFilter{WorkspaceID: q.Get("workspace_id"), UserID: q.Get("user_id"),
		ClientName: q.Get("client_name"), ProviderID: q.Get("provider_id"), ProviderName: q.Get("provider_name"), Limit: 100}
	for _, st := range q["status"] {
		if !knownStatus(storage.ConnectionStatus(st)) {
			return httpapi.BadRequest("status must be one of pending, exchanging, active, failed, expired, revoked")
		}
		f.AnyStatus = append(f.AnyStatus, storage.ConnectionStatus(st))
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return httpapi.BadRequest("limit must be a number from 1 to 1000")
		}
		f.Limit = n
	}
	if q.Has("cursor") {
		k, err := pagecursor.Decode(q.Get("cursor"))
		if err != nil {
			return httpapi.BadRequest("cursor is not one this API returned")
		}
		f.After = &k
	}
	// One row more than asked says whether another page follows.
	page := f.Limit
	f.Limit++
	conns, err := b.store.ListConnections(r.Context(), f)
	if err != nil {
		return err
	}
	body := map[string]any{}
	if len(conns) > page {
		conns = conns[:page]
		last := conns[page-1]
		body["next_cursor"] = pagecursor.Encode(storage.ConnectionKey{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	out := make([]connectionView, 0, len(conns))
	for _, c := range conns {
		out = append(out, viewConnection(c))
	}
	body["connections"] = out
	httpapi.WriteJSON(w, http.StatusOK, body)
	return nil
}

func knownStatus(s storage.ConnectionStatus) bool {
	switch s {
	case storage.StatusPending, storage.StatusExchanging, storage.StatusActive, storage.StatusAwaitingConfirmation,
		storage.StatusFailed, storage.StatusExpired, storage.StatusRevoked:
		return true
	}
	return false
}

// reservedTokenFields may not be overwritten by provider extras.
var reservedTokenFields = map[string]bool{
	"access_token": true, "token_type": true, "expires_in": true, "expires_at": true, "scope": true,
	"id_token": true, "provider": true, "refresh_token": true, "connection_id": true, "credential": true,
}

// tokenBody is the token answer: the provider's extras, then the named
// members over them. A refresh_token reaches the agent only when the
// operator turned ExposeRefreshToken on, including one nested in an extra
// (Slack's authed_user carries the user token's refresh_token).
func (b *Broker) tokenBody(c storage.Connection, set tokenset.Set, withIDToken bool) map[string]any {
	body := make(map[string]any, 8+len(set.Extra))
	for k, v := range set.Extra {
		if reservedTokenFields[k] {
			continue
		}
		if !b.cfg.ExposeRefreshToken && tokenset.Holds(v, "refresh_token") {
			v = withoutRefreshTokens(v)
		}
		body[k] = v
	}
	body["access_token"] = set.AccessToken
	body["token_type"] = set.TokenType
	body["scope"] = set.Scope
	body["provider"] = c.ProviderName
	if set.Scope == "" {
		body["scope"] = strings.Join(c.Scopes, " ")
	}
	body["expires_at_source"] = set.ExpirySource
	if !set.Expiry.IsZero() {
		left := int64(set.Expiry.Sub(b.now()).Seconds())
		if left < 0 {
			left = 0
		}
		body["expires_in"] = left
		body["expires_at"] = set.Expiry.UTC().Format(time.RFC3339)
	}
	if set.IDToken != "" && withIDToken {
		body["id_token"] = set.IDToken
	}
	if b.cfg.ExposeRefreshToken && set.RefreshToken != "" {
		body["refresh_token"] = set.RefreshToken
	}
	if set.Credential != nil {
		body["credential"] = set.Credential.Object()
	}
	return body
}

// withoutRefreshTokens returns a copy of v without the object members named
// refresh_token at any depth. v itself is left alone: the token set it
// belongs to is the caller's.
func withoutRefreshTokens(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if k != "refresh_token" {
				out[k] = withoutRefreshTokens(e)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = withoutRefreshTokens(e)
		}
		return out
	}
	return v
}

func (b *Broker) getToken(w http.ResponseWriter, r *http.Request) error {
	// The query is parsed once for the whole read: auto_refresh here,
	// client_name for the ownership check and the audit event's actor.
	q := r.URL.Query()
	autoRefresh := true
	switch q.Get("auto_refresh") {
	case "false", "0":
		autoRefresh = false
	case "", "true", "1":
	default:
		return httpapi.BadRequest("auto_refresh must be true or false")
	}
	withIDToken, err := b.wantsIDToken(q)
	if err != nil {
		return err
	}
	c, set, err := b.readToken(r, q, autoRefresh, withIDToken)
	if err != nil {
		return err
	}
	httpapi.WriteJSONObject(w, http.StatusOK, b.tokenBody(c, set, withIDToken))
	return nil
}

// readToken is a token read, over HTTP or in process: the connection named
// in r's path, owned as q says, and its token, refreshed first when
// autoRefresh and it is due; counted and audited. withIDToken says whether
// the answer will carry the id_token (for the metrics).
func (b *Broker) readToken(r *http.Request, q url.Values, autoRefresh, withIDToken bool) (storage.Connection, tokenset.Set, error) {
	// One query for the connection and its token: the hot path.
	c, row, err := b.loadConnectionQuery(r, q)
	if err != nil {
		return storage.Connection{}, tokenset.Set{}, err
	}
	if err := refresh.Usable(c); err != nil {
		return storage.Connection{}, tokenset.Set{}, err
	}
	set, err := openRow(b.vault, c, row)
	if err != nil {
		return storage.Connection{}, tokenset.Set{}, err
	}
	if autoRefresh {
		if c, set, err = b.refresher.Current(r.Context(), c, *row, set, false); err != nil {
			return storage.Connection{}, tokenset.Set{}, err
		}
	}
	b.m.tokenRead(c.ProviderName, set.IDToken != "" && withIDToken)
	// Off the critical path: an in-memory mark, written in batches.
	b.reads.Read(c.ID)
	if set.IDToken != "" && withIDToken {
		b.m.idTokens.Inc()
	}
	b.auditQuery(r, q, storage.AuditEvent{Type: "token.read", ConnectionID: c.ID, ProviderID: c.ProviderID})
	return c, set, nil
}

func (b *Broker) refreshToken(w http.ResponseWriter, r *http.Request) error {
	withIDToken, err := b.wantsIDToken(r.URL.Query())
	if err != nil {
		return err
	}
	c, set, err := b.forceRefresh(r)
	if err != nil {
		return err
	}
	httpapi.WriteJSONObject(w, http.StatusOK, b.tokenBody(c, set, withIDToken))
	return nil
}

// forceRefresh refreshes the token of the connection named in r at the
// provider, over HTTP or in process, and audits it.
func (b *Broker) forceRefresh(r *http.Request) (storage.Connection, tokenset.Set, error) {
	c, row, err := b.loadConnection(r)
	if err != nil {
		return storage.Connection{}, tokenset.Set{}, err
	}
	if err := refresh.Usable(c); err != nil {
		return storage.Connection{}, tokenset.Set{}, err
	}
	set, err := openRow(b.vault, c, row)
	if err != nil {
		return storage.Connection{}, tokenset.Set{}, err
	}
	if c, set, err = b.refresher.Current(r.Context(), c, *row, set, true); err != nil {
		return storage.Connection{}, tokenset.Set{}, err
	}
	b.audit(r, storage.AuditEvent{Type: "token.refreshed", ConnectionID: c.ID, ProviderID: c.ProviderID})
	return c, set, nil
}

func (b *Broker) deleteConnection(w http.ResponseWriter, r *http.Request) error {
	c, _, err := b.loadConnection(r)
	if err != nil {
		return err
	}
	// Once the provider was asked to revoke, the deletion must happen even
	// if the caller goes away.
	ctx := context.WithoutCancel(r.Context())
	// The connection, its token and a pending revocation of the grant
	// change in one transaction: the connection is gone for agents at
	// once, and a refresh or callback finishing after this finds nothing
	// to store into. A revocation the provider fails is retried.
	revoked, err := b.revoker.DeleteConnection(ctx, c.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return httpapi.NotFound("connection")
	} else if err != nil {
		return err
	}
	b.audit(r, storage.AuditEvent{Type: "connection.deleted", ConnectionID: c.ID, ProviderID: c.ProviderID,
		Detail: map[string]string{"revoked_at_provider": string(revoked)}})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// openRow opens a connection's token row; no row means the user must
// consent again.
func openRow(v tokenset.Opener, c storage.Connection, row *storage.Token) (tokenset.Set, error) {
	if row == nil {
		return tokenset.Set{}, httpapi.Conflict(httpapi.CodeReauthRequired, "connection has no stored token: the user must connect again")
	}
	return tokenset.Open(v, c, *row)
}
