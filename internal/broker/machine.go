package broker

import (
	"context"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
)

// machineConnection creates a connection that needs no user: the
// client_credentials grant (RFC 6749 §4.4) at a provider registered for
// it. The token is requested now; the connection is active at once, and
// the refresher asks for a new token whenever the one it holds runs out.
// Nothing is stored when the authorization server refuses.
func (b *Broker) machineConnection(w http.ResponseWriter, r *http.Request, req consentRequest) error {
	ctx := r.Context()
	if req.ConnectionID != "" {
		return httpapi.BadRequest("connection_id cannot be used with grant client_credentials")
	}
	prov, err := b.providers.Lookup(ctx, req.ProviderID, "")
	if err != nil {
		return err
	}
	if prov.Profile.Grant != provider.GrantClientCredentials {
		return httpapi.BadRequest("provider %q is not registered for the client_credentials grant", prov.Row.Name)
	}
	ends, err := b.providers.Endpoints(ctx, prov)
	if err != nil {
		return err
	}
	secret, err := b.providers.ClientSecret(prov)
	if err != nil {
		return err
	}
	scopes := req.Scopes
	if len(scopes) == 0 {
		scopes = prov.Profile.Scopes
	}
	start := b.now()
	tok, err := b.xchg.ClientCredentials(ctx, prov.TokenEndpoint(ends, secret), scopes)
	b.m.exchangeSeconds.Observe(b.now().Sub(start).Seconds())
	if err == nil {
		err = prov.Profile.NormalizeTokenResponse(tok)
	}
	if err != nil {
		b.m.exchanges.WithLabelValues("error").Inc()
		b.log.WarnContext(ctx, "client_credentials request failed", "provider", prov.Row.Name, "class", string(exchange.Classify(err)), "err", err)
		return httpapi.BadGateway(httpapi.CodeProviderError, "the authorization server did not grant a token to the broker's client", err)
	}
	b.m.exchanges.WithLabelValues("success").Inc()
	connID, err := uuid.NewRandomFromReader(b.randReader())
	if err != nil {
		return err
	}
	id := connID.String()
	now := b.now().UTC()
	expires := now.Add(b.cfg.ConsentTTL)
	conn := storage.Connection{
		ID: id, WorkspaceID: req.WorkspaceID, UserID: req.UserID, ClientName: req.ClientName,
		ProviderID: prov.Row.ID, ProviderName: prov.Row.Name, Scopes: scopes, ReturnURL: req.ReturnURL,
		Metadata: req.Metadata, Status: storage.StatusActive, CreatedAt: now, UpdatedAt: now, ExpiresAt: expires,
	}
	set := tokenset.New(tok, prov.Profile, now)
	sealed, err := tokenset.Seal(b.vault, conn, set)
	if err != nil {
		return err
	}
	if err := b.store.CreateConnection(ctx, conn); err != nil {
		return err
	}
	_, err = b.store.UpdateConnection(ctx, id, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		return c, storage.TokenChange{Put: &storage.Token{ConnectionID: id, Ciphertext: sealed, AADVersion: tokenset.AADVersion, ExpiresAt: set.Expiry,
			ExpirySource: set.ExpirySource, CreatedAt: now, UpdatedAt: now}}, nil
	})
	if err != nil {
		// Never leave an active connection without its token.
		_ = b.store.DeleteConnection(context.WithoutCancel(ctx), id)
		return err
	}
	// The gateway verifies the state the broker signs before it hands the
	// connection id to an agent, for this grant as for any other.
	st, err := b.state.Sign(state.Payload{ConnectionID: id, WorkspaceID: req.WorkspaceID, ProviderID: prov.Row.ID,
		IssuedAt: now, ExpiresAt: expires})
	if err != nil {
		return err
	}
	b.audit(r, storage.AuditEvent{Type: "connection.client_credentials", ConnectionID: id, ProviderID: prov.Row.ID, Actor: req.ClientName,
		Detail: map[string]string{"workspace_id": req.WorkspaceID, "scopes": strings.Join(scopes, " ")}})
	b.log.InfoContext(ctx, "machine connection created", "connection_id", id, "provider", prov.Row.Name)
	if scopes == nil {
		scopes = []string{}
	}
	httpapi.WriteJSON(w, http.StatusOK, consentResponse{State: st, Scopes: scopes, ProviderID: prov.Row.ID, ConnectionID: id, ExpiresAt: expires, Status: string(storage.StatusActive)})
	return nil
}
