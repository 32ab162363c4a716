package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dromos-dev/dromos/internal/devicepoll"
	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/expectid"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/registry"
	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/storage"
)

// deviceGrace keeps a device connection pending a little past its device
// code's expiry, so the poller (not the pending clean-up) ends it, with
// the reason expired_token.
const deviceGrace = time.Minute

// deviceConnection starts the device authorization grant (RFC 8628) for
// an oauth2_device_code provider: the broker asks the provider for a
// device and user code, stores the pending connection with its sealed
// device code, and answers what the person must open and type. Package
// devicepoll polls the token endpoint from then on. Nothing is stored when
// the provider refuses.
func (b *Broker) deviceConnection(w http.ResponseWriter, r *http.Request, req consentRequest, prov registry.Provider) error {
	ctx := r.Context()
	switch {
	case req.Credentials != nil:
		return httpapi.BadRequest("provider %q uses auth_mode oauth2_device_code: credentials are for api_key and basic providers", prov.Row.Name)
	case req.ConnectionID != "":
		return httpapi.BadRequest("connection_id cannot be used with auth_mode oauth2_device_code yet: request a new connection")
	case req.ConfirmURL != "" || req.RequireConfirmation:
		// Confirmation sends the consenting browser to confirm_url; a
		// device flow has no browser coming back to the broker.
		return httpapi.BadRequest("provider %q uses auth_mode oauth2_device_code, which cannot be confirmed: no browser returns from the provider", prov.Row.Name)
	}
	var expected expectid.Identity
	if req.ExpectedIdentity != nil {
		expected = *req.ExpectedIdentity
	}
	scopes := req.Scopes
	if len(scopes) == 0 {
		scopes = prov.Profile.Scopes
	}
	if !expected.IsZero() && !slices.Contains(scopes, "openid") {
		scopes = append(slices.Clone(scopes), "openid")
	}
	ends, err := b.providers.Endpoints(ctx, prov)
	if err != nil {
		return err
	}
	if slices.Contains(scopes, "openid") && (ends.Issuer == "" || ends.JWKS == "") {
		return httpapi.BadRequest("provider %q cannot verify id_tokens (it has no issuer and JWKS): ask without openid, or register it with an issuer (discovery) or issuer and jwks_url", prov.Row.Name)
	}
	if ends.Device == "" {
		return httpapi.BadGateway(httpapi.CodeProviderError, fmt.Sprintf("provider %q has no device authorization endpoint (set device_authorization_url)", prov.Row.Name), nil)
	}
	secret, err := b.providers.ClientSecret(prov)
	if err != nil {
		return err
	}
	auth, err := b.xchg.AuthorizeDevice(ctx, ends.Device, prov.TokenEndpoint(ends, secret), scopes)
	if err != nil {
		b.log.WarnContext(ctx, "device authorization request failed", "provider", prov.Row.Name, "class", string(exchange.Classify(err)), "err", err)
		return httpapi.BadGateway(httpapi.CodeProviderError, "the provider did not start a device authorization", err)
	}
	connID, err := uuid.NewRandomFromReader(b.randReader())
	if err != nil {
		return err
	}
	id := connID.String()
	now := b.now().UTC()
	grant, err := b.devices.NewGrant(id, prov.Row.ID, auth, now)
	if err != nil {
		return err
	}
	expires := grant.ExpiresAt.Add(deviceGrace)
	conn := storage.Connection{
		ID: id, WorkspaceID: req.WorkspaceID, UserID: req.UserID, ClientName: req.ClientName,
		ProviderID: prov.Row.ID, ProviderName: prov.Row.Name, Scopes: scopes, ReturnURL: req.ReturnURL,
		Metadata: req.Metadata, Status: storage.StatusPending, CreatedAt: now, UpdatedAt: now, ExpiresAt: expires,
		ExpectedIdentity: expected.Encode(),
	}
	err = b.store.CreateDeviceConnection(ctx, conn, grant, b.cfg.MaxPendingPerClient)
	if errors.Is(err, storage.ErrLimitReached) {
		return &httpapi.Error{Status: http.StatusTooManyRequests, Code: httpapi.CodeTooManyPending,
			Message: fmt.Sprintf("this client already has %d connections waiting for consent (MAX_PENDING_PER_CLIENT); finish or let some expire first",
				b.cfg.MaxPendingPerClient), RetryAfter: time.Minute}
	}
	if err != nil {
		return err
	}
	// The gateway verifies the state the broker signs before it hands the
	// connection id to an agent, for this grant as for any other.
	st, err := b.state.Sign(state.Payload{ConnectionID: id, WorkspaceID: req.WorkspaceID, ProviderID: prov.Row.ID,
		IssuedAt: now, ExpiresAt: expires})
	if err != nil {
		return err
	}
	b.m.consents.Inc()
	if slices.Contains(scopes, "openid") {
		b.m.consentsOpenID.Inc()
	}
	b.audit(r, storage.AuditEvent{Type: "consent.created", ConnectionID: id, ProviderID: prov.Row.ID, Actor: req.ClientName,
		Detail: map[string]string{"workspace_id": req.WorkspaceID, "scopes": strings.Join(scopes, " "), "flow": "device"}})
	b.log.InfoContext(ctx, "device authorization started", "connection_id", id, "provider", prov.Row.Name, "device", auth)
	if scopes == nil {
		scopes = []string{}
	}
	httpapi.WriteJSON(w, http.StatusOK, consentResponse{State: st, Scopes: scopes, ProviderID: prov.Row.ID, ConnectionID: id,
		ExpiresAt: expires, Status: string(storage.StatusPending),
		VerificationURI: auth.VerificationURI, VerificationURIComplete: auth.VerificationURIComplete, UserCode: auth.UserCode,
		ExpiresIn: int64(auth.ExpiresIn / time.Second), Interval: int64(grant.IntervalSeconds)})
	return nil
}

// deviceTokenEndpoint is where the poller asks for a device grant's token.
func (b *Broker) deviceTokenEndpoint(ctx context.Context, providerID string) (exchange.Endpoint, error) {
	if _, err := b.store.GetProvider(ctx, providerID); errors.Is(err, storage.ErrNotFound) {
		return exchange.Endpoint{}, devicepoll.ErrNoProvider
	} else if err != nil {
		return exchange.Endpoint{}, err
	}
	prov, err := b.providers.Lookup(ctx, providerID, "")
	if err != nil {
		return exchange.Endpoint{}, err
	}
	ends, err := b.providers.Endpoints(ctx, prov)
	if err != nil {
		return exchange.Endpoint{}, err
	}
	secret, err := b.providers.ClientSecret(prov)
	if err != nil {
		return exchange.Endpoint{}, err
	}
	return prov.TokenEndpoint(ends, secret), nil
}

// deviceBudget takes a call of the provider's token_calls_per_minute for a
// device poll, at the priority of background refreshes.
func (b *Broker) deviceBudget(ctx context.Context, providerID string) bool {
	prov, err := b.providers.Lookup(ctx, providerID, "")
	if err != nil {
		// Not counted: the poll finds out what became of the provider.
		return true
	}
	return b.refresher.TakeBackgroundCall(ctx, prov.Row.ID, prov.Row.Name, prov.Profile)
}

// deviceThrottled throttles the provider after a device poll's 429, as
// after a refresh's.
func (b *Broker) deviceThrottled(ctx context.Context, providerID string, err error) {
	name := ""
	if prov, lerr := b.providers.Lookup(ctx, providerID, ""); lerr == nil {
		name = prov.Row.Name
	}
	b.refresher.ProviderAnswered(ctx, providerID, name, err)
}

// deviceGranted keeps the token a device poll brought, checked exactly
// like a code exchange's (package callback's keepGrant): the connection
// leaves pending once, and only the winner stores the grant.
func (b *Broker) deviceGranted(ctx context.Context, conn storage.Connection, ep exchange.Endpoint, tok *exchange.Token) {
	b.m.exchanges.WithLabelValues("success").Inc()
	prov, err := b.providers.Lookup(ctx, conn.ProviderID, "")
	var ends registry.Endpoints
	if err == nil {
		ends, err = b.providers.Endpoints(ctx, prov)
	}
	if err != nil {
		b.log.ErrorContext(ctx, "device grant: loading the provider", "connection_id", conn.ID, "err", err)
		b.deviceFailed(ctx, conn, "server_error")
		return
	}
	conn, err = b.store.UpdateConnection(ctx, conn.ID, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		if c.Status != storage.StatusPending {
			return c, storage.TokenChange{}, errNotPending
		}
		c.Status, c.UpdatedAt = storage.StatusExchanging, b.now().UTC()
		return c, storage.TokenChange{}, nil
	})
	if err != nil {
		// Deleted or ended meanwhile: nobody keeps this grant.
		b.log.InfoContext(ctx, "device grant: connection no longer pending; revoking the grant", "connection_id", conn.ID, "err", err)
		b.revokeUnkept(ctx, conn.ID, ends, ep, tok)
		return
	}
	failure := b.keepGrant(ctx, conn, prov, ends, ep, tok, nil, grantKeeper{keep: b.keepAsActive})
	if failure != "" {
		_, err := b.store.UpdateConnection(ctx, conn.ID, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
			if c.Status != storage.StatusExchanging {
				return c, storage.TokenChange{}, errLeftExchanging
			}
			c.Status, c.StatusReason, c.UpdatedAt = storage.StatusFailed, failure, b.now().UTC()
			return c, storage.TokenChange{Delete: true}, nil
		})
		if err != nil && !errors.Is(err, errLeftExchanging) && !errors.Is(err, storage.ErrNotFound) {
			b.log.ErrorContext(ctx, "device grant: marking connection failed", "connection_id", conn.ID, "err", err)
		}
		b.auditWorker(ctx, storage.AuditEvent{Type: "device.failed", ConnectionID: conn.ID, ProviderID: conn.ProviderID, Actor: conn.ClientName,
			Detail: map[string]string{"reason": failure}})
		b.log.InfoContext(ctx, "device grant refused", "connection_id", conn.ID, "reason", failure)
		return
	}
	b.auditWorker(ctx, storage.AuditEvent{Type: "device.succeeded", ConnectionID: conn.ID, ProviderID: conn.ProviderID, Actor: conn.ClientName})
	b.log.InfoContext(ctx, "connection active", "connection_id", conn.ID, "provider", conn.ProviderName, "flow", "device")
}

// deviceFailed fails a pending device connection with the provider's
// answer (access_denied, expired_token) or the poller's reason.
func (b *Broker) deviceFailed(ctx context.Context, conn storage.Connection, reason string) {
	reason = sanitizeErrorCode(reason)
	_, err := b.store.UpdateConnection(ctx, conn.ID, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		if c.Status != storage.StatusPending {
			return c, storage.TokenChange{}, errNotPending
		}
		c.Status, c.StatusReason, c.UpdatedAt = storage.StatusFailed, reason, b.now().UTC()
		return c, storage.TokenChange{Delete: true}, nil
	})
	if err != nil {
		if !errors.Is(err, errNotPending) && !errors.Is(err, storage.ErrNotFound) {
			b.log.ErrorContext(ctx, "device grant: marking connection failed", "connection_id", conn.ID, "err", err)
		}
		return
	}
	b.auditWorker(ctx, storage.AuditEvent{Type: "device.failed", ConnectionID: conn.ID, ProviderID: conn.ProviderID, Actor: conn.ClientName,
		Detail: map[string]string{"reason": reason}})
	b.log.InfoContext(ctx, "device grant ended", "connection_id", conn.ID, "reason", reason)
}

// auditWorker records an event of background work (no request).
func (b *Broker) auditWorker(ctx context.Context, e storage.AuditEvent) {
	e.Time = b.now().UTC()
	if err := b.store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		b.log.WarnContext(ctx, "audit append failed", "type", e.Type, "connection_id", e.ConnectionID, "err", err)
	}
}
