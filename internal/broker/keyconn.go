package broker

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/dromos-dev/dromos/internal/credential"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/pkce"
	"github.com/dromos-dev/dromos/internal/registry"
	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
)

// ReasonCredentialRefused is the status reason of a key-based connection
// whose credential the provider's verification request refused.
const ReasonCredentialRefused = "credential_refused"

// CodeCredentialRefused answers a rotation whose new credential the
// provider refused; the connection keeps its current one.
const CodeCredentialRefused = "credential_refused"

// keyConnection stores an API key or basic credential the agent submitted
// for an api_key or basic provider, after the provider's verification
// request (when the profile has one) accepted it. A new connection whose
// credential is refused is stored failed, without the credential; with
// connection_id the credential of that connection is replaced (rotation),
// and a refused one changes nothing.
func (b *Broker) keyConnection(w http.ResponseWriter, r *http.Request, req consentRequest, prov registry.Provider) error {
	ctx := r.Context()
	if len(req.Credentials) == 0 {
		// No credential (absent, or {}): the user types it into the
		// hosted form.
		return b.keyFormConnection(w, r, req, prov)
	}
	cred, err := credential.Parse(prov.Profile.CredentialType(), prov.Profile.CredentialSpec(), req.Credentials)
	if err != nil {
		return httpapi.BadRequest("%s", err)
	}
	var prev *storage.Connection
	if req.ConnectionID != "" {
		c, err := b.rotatable(ctx, req, prov.Row.ID)
		if err != nil {
			return err
		}
		prev = &c
	}
	status, reason := storage.StatusActive, ""
	if v := prov.Profile.CredentialSpec().Verify; v != nil {
		err := credential.Verify(ctx, b.userinfoClient, *v, cred)
		var refused *credential.RefusedError
		switch {
		case errors.As(err, &refused) && prev != nil:
			return &httpapi.Error{Status: http.StatusBadRequest, Code: CodeCredentialRefused,
				Message: "the provider refused the new credential (" + http.StatusText(refused.Status) + "); the connection keeps its current one"}
		case errors.As(err, &refused):
			status, reason = storage.StatusFailed, ReasonCredentialRefused
		case err != nil:
			b.log.WarnContext(ctx, "credential verification got no answer", "provider", prov.Row.Name, "err", err)
			return httpapi.BadGateway(httpapi.CodeProviderError, "the provider's verification endpoint did not answer; nothing was stored, try again", err)
		}
	}
	now := b.now().UTC()
	expires := now.Add(b.cfg.ConsentTTL)
	var conn storage.Connection
	if prev != nil {
		conn, err = b.rotateCredential(ctx, *prev, cred, now)
	} else {
		conn, err = b.createKeyConnection(ctx, req, prov, cred, status, reason, now, expires)
	}
	if err != nil {
		return err
	}
	st, err := b.state.Sign(state.Payload{ConnectionID: conn.ID, WorkspaceID: conn.WorkspaceID, ProviderID: prov.Row.ID,
		IssuedAt: now, ExpiresAt: expires})
	if err != nil {
		return err
	}
	event := "connection.credential_stored"
	if prev != nil {
		event = "connection.credential_rotated"
	}
	detail := map[string]string{"workspace_id": conn.WorkspaceID, "type": cred.Type, "status": string(conn.Status)}
	if reason != "" {
		detail["reason"] = reason
	}
	b.audit(r, storage.AuditEvent{Type: event, ConnectionID: conn.ID, ProviderID: prov.Row.ID, Actor: req.ClientName, Detail: detail})
	b.log.InfoContext(ctx, "key connection stored", "connection_id", conn.ID, "provider", prov.Row.Name, "status", conn.Status)
	httpapi.WriteJSON(w, http.StatusOK, consentResponse{State: st, Scopes: []string{}, ProviderID: prov.Row.ID,
		ConnectionID: conn.ID, ExpiresAt: expires, Status: string(conn.Status), StatusReason: conn.StatusReason})
	return nil
}

func (b *Broker) createKeyConnection(ctx context.Context, req consentRequest, prov registry.Provider, cred credential.Credential,
	status storage.ConnectionStatus, reason string, now, expires time.Time) (storage.Connection, error) {
	connID, err := uuid.NewRandomFromReader(b.randReader())
	if err != nil {
		return storage.Connection{}, err
	}
	conn := storage.Connection{
		ID: connID.String(), WorkspaceID: req.WorkspaceID, UserID: req.UserID, ClientName: req.ClientName,
		ProviderID: prov.Row.ID, ProviderName: prov.Row.Name, ReturnURL: req.ReturnURL, Metadata: req.Metadata,
		Status: status, StatusReason: reason, CreatedAt: now, UpdatedAt: now, ExpiresAt: expires,
	}
	if err := b.store.CreateConnection(ctx, conn); err != nil {
		return storage.Connection{}, err
	}
	if status != storage.StatusActive {
		return conn, nil // a refused credential is not kept
	}
	if _, err := b.store.UpdateConnection(ctx, conn.ID, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		row, err := sealCredential(b, c, cred, now)
		return c, storage.TokenChange{Put: row}, err
	}); err != nil {
		// Never leave an active connection without its credential.
		_ = b.store.DeleteConnection(context.WithoutCancel(ctx), conn.ID)
		return storage.Connection{}, err
	}
	return conn, nil
}

// rotateCredential replaces the credential of an existing connection and
// makes it active again.
func (b *Broker) rotateCredential(ctx context.Context, prev storage.Connection, cred credential.Credential, now time.Time) (storage.Connection, error) {
	return b.store.UpdateConnection(ctx, prev.ID, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		if c.ProviderID != prev.ProviderID || c.ClientName != prev.ClientName || c.WorkspaceID != prev.WorkspaceID {
			return c, storage.TokenChange{}, httpapi.NotFound("connection")
		}
		c.Status, c.StatusReason, c.UpdatedAt, c.LastErrorClass = storage.StatusActive, "", now, ""
		row, err := sealCredential(b, c, cred, now)
		return c, storage.TokenChange{Put: row}, err
	})
}

func sealCredential(b *Broker, c storage.Connection, cred credential.Credential, now time.Time) (*storage.Token, error) {
	sealed, err := tokenset.Seal(b.vault, c, tokenset.FromCredential(cred, now))
	if err != nil {
		return nil, err
	}
	return &storage.Token{ConnectionID: c.ID, Ciphertext: sealed, AADVersion: tokenset.AADVersion, CreatedAt: now, UpdatedAt: now}, nil
}

// rotatable checks that req may replace the credential of the named
// connection: it exists, belongs to the caller and to this provider, and
// was not deleted.
func (b *Broker) rotatable(ctx context.Context, req consentRequest, providerID string) (storage.Connection, error) {
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
	if c.Status == storage.StatusRevoked {
		return storage.Connection{}, httpapi.Conflict("not_reconnectable", "connection was revoked: request a new one")
	}
	return c, nil
}

// keyFormConnection creates a pending connection whose authUrl opens the
// hosted key form (keyform.go). Its sealed PKCE slot holds a random value
// that only carries the browser binding, as for a consent.
func (b *Broker) keyFormConnection(w http.ResponseWriter, r *http.Request, req consentRequest, prov registry.Provider) error {
	if req.ConnectionID != "" {
		return httpapi.BadRequest("to replace a connection's credential, give the new one in credentials")
	}
	connID, err := uuid.NewRandomFromReader(b.randReader())
	if err != nil {
		return err
	}
	id := connID.String()
	slot, err := pkce.NewVerifier(b.randReader())
	if err != nil {
		return err
	}
	sealed, err := b.vault.Seal([]byte(slot), tokenset.VerifierAAD(id))
	if err != nil {
		return err
	}
	now := b.now().UTC()
	expires := now.Add(b.cfg.ConsentTTL)
	st, err := b.state.Sign(state.Payload{ConnectionID: id, WorkspaceID: req.WorkspaceID, ProviderID: prov.Row.ID, IssuedAt: now, ExpiresAt: expires})
	if err != nil {
		return err
	}
	conn := storage.Connection{
		ID: id, WorkspaceID: req.WorkspaceID, UserID: req.UserID, ClientName: req.ClientName,
		ProviderID: prov.Row.ID, ProviderName: prov.Row.Name, ReturnURL: req.ReturnURL, Metadata: req.Metadata,
		Status: storage.StatusPending, PKCEVerifier: sealed, CreatedAt: now, UpdatedAt: now, ExpiresAt: expires,
	}
	if err := b.createPending(r.Context(), conn); err != nil {
		return err
	}
	b.audit(r, storage.AuditEvent{Type: "consent.created", ConnectionID: id, ProviderID: prov.Row.ID, Actor: req.ClientName,
		Detail: map[string]string{"workspace_id": req.WorkspaceID, "form": prov.Profile.CredentialType()}})
	httpapi.WriteJSON(w, http.StatusOK, consentResponse{AuthURL: b.startURL(st), State: st, Scopes: []string{},
		ProviderID: prov.Row.ID, ConnectionID: id, ExpiresAt: expires})
	return nil
}
