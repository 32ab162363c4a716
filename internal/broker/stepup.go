package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/pkce"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/registry"
	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/stepup"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
)

// This file wires package stepup into the consent, start and callback
// flows: a step-up is a consent of an active connection whose PKCE
// material, nonce and expiry live on the step-up, not on the connection.

// stepUpConsent starts a step-up when req names an active connection of
// the caller. handled is false for any other connection, which the
// reconnect rules answer (404 for another owner's, 409 for one that is
// pending…).
func (b *Broker) stepUpConsent(w http.ResponseWriter, r *http.Request, req consentRequest, prov registry.Provider, ends registry.Endpoints) (handled bool, err error) {
	if _, err := uuid.Parse(req.ConnectionID); err != nil || len(req.ConnectionID) != 36 {
		return false, nil
	}
	ctx := r.Context()
	c, err := b.store.GetConnection(ctx, req.ConnectionID)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	owner := stepup.Owner{WorkspaceID: req.WorkspaceID, ClientName: req.ClientName}
	if !stepup.Applies(owner, c) {
		return false, nil
	}
	if c.ProviderID != prov.Row.ID {
		return true, httpapi.BadRequest("connection_id belongs to another provider")
	}
	if len(req.Scopes) == 0 {
		return true, httpapi.BadRequest("scopes to add are required to step up an active connection")
	}
	scopes := stepup.Union(c.Scopes, req.Scopes)
	if c.Subject != "" && !slices.Contains(scopes, "openid") {
		// The new consent must prove the connection's account again.
		scopes = append(scopes, "openid")
	}
	openid := slices.Contains(scopes, "openid")
	if openid && (ends.Issuer == "" || ends.JWKS == "") {
		return true, httpapi.BadRequest("provider %q cannot verify id_tokens (it has no issuer and JWKS): ask without openid, or register it with an issuer (discovery) or issuer and jwks_url", prov.Row.Name)
	}
	verifier, err := pkce.NewVerifier(b.randReader())
	if err != nil {
		return true, err
	}
	sealedVerifier, err := b.vault.Seal([]byte(verifier), tokenset.VerifierAAD(c.ID))
	if err != nil {
		return true, err
	}
	var nonce string
	if openid {
		if nonce, err = pkce.NewVerifier(b.randReader()); err != nil {
			return true, err
		}
	}
	stepID, err := uuid.NewRandomFromReader(b.randReader())
	if err != nil {
		return true, err
	}
	now := b.now().UTC()
	expires := now.Add(b.cfg.ConsentTTL)
	// A state is matched to its flow by its expiry, to the second: keep
	// this attempt's apart from the connection's own consent and from the
	// previous attempt (Begin refuses a tie that slips in meanwhile).
	last := c.ExpiresAt
	if prev, err := b.store.LatestStepUp(ctx, c.ID); err == nil && prev.ExpiresAt.After(last) {
		last = prev.ExpiresAt
	} else if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return true, err
	}
	if expires.Unix() <= last.Unix() {
		expires = time.Unix(last.Unix()+1, 0).UTC()
	}
	st, err := b.state.Sign(state.Payload{ConnectionID: c.ID, WorkspaceID: c.WorkspaceID, ProviderID: prov.Row.ID,
		Nonce: nonce, IssuedAt: now, ExpiresAt: expires})
	if err != nil {
		return true, err
	}
	// The agent gets the broker's start link, which binds the browser and
	// only then builds the provider's request (pushing it when the
	// provider wants that); only without browser binding is the
	// provider's URL handed out directly.
	authURL := b.startURL(st)
	if b.cfg.InsecureSkipBrowserBinding {
		authURL, err = b.providerAuthURL(ctx, prov, ends, provider.AuthRequest{
			ClientID: prov.Profile.ClientID, RedirectURI: b.RedirectURI(), Scopes: scopes,
			State: st, Nonce: nonce, CodeChallenge: pkce.ChallengeS256(verifier),
		})
		if err != nil {
			return true, fmt.Errorf("building authorization URL: %w", err)
		}
	}
	su := storage.StepUp{ID: stepID.String(), ConnectionID: c.ID, Scopes: scopes, Added: req.Scopes, ReturnURL: req.ReturnURL,
		Status: storage.StepUpPending, Nonce: nonce, PKCEVerifier: sealedVerifier, CreatedAt: now, UpdatedAt: now, ExpiresAt: expires}
	if err := b.stepups.Begin(ctx, owner, c, su); err != nil {
		if he, ok := httpapi.As(err); ok && he.Code == stepup.CodeLimited {
			b.audit(r, storage.AuditEvent{Type: stepup.EventFailed, ConnectionID: c.ID, ProviderID: c.ProviderID, Actor: req.ClientName,
				Detail: map[string]string{"reason": stepup.CodeLimited, "added": stepup.Scopes(req.Scopes)}})
		}
		return true, err
	}
	b.m.consents.Inc()
	if openid {
		b.m.consentsOpenID.Inc()
	}
	b.audit(r, storage.AuditEvent{Type: stepup.EventCreated, ConnectionID: c.ID, ProviderID: c.ProviderID, Actor: req.ClientName,
		Detail: map[string]string{"step_up_id": su.ID, "scopes": stepup.Scopes(scopes), "added": stepup.Scopes(req.Scopes)}})
	b.log.InfoContext(ctx, "step-up created", "connection_id", c.ID, "step_up_id", su.ID, "provider", prov.Row.Name)
	httpapi.WriteJSON(w, http.StatusOK, consentResponse{AuthURL: authURL, State: st, Scopes: scopes,
		ProviderID: prov.Row.ID, ConnectionID: c.ID, ExpiresAt: expires})
	return true, nil
}

// stepUpFlow finds the step-up a verified state belongs to when it is not
// the state of conn's own consent, and returns the connection as that
// attempt's consent sees it (stepup.View). For any other state it returns
// conn unchanged and a nil step-up.
func (b *Broker) stepUpFlow(ctx context.Context, conn storage.Connection, p state.Payload) (*storage.StepUp, storage.Connection, *callbackRejection) {
	if sameFlow(conn, p) || conn.WorkspaceID != p.WorkspaceID || conn.ProviderID != p.ProviderID {
		return nil, conn, nil
	}
	su, ok, err := b.stepups.Match(ctx, conn.ID, p.Nonce, p.ExpiresAt)
	if err != nil {
		b.log.ErrorContext(ctx, "loading the connection's step-up", "connection_id", conn.ID, "err", err)
		return nil, conn, &errStoreUnavailable
	}
	if !ok {
		return nil, conn, nil
	}
	return &su, stepup.View(conn, su), nil
}

// bindStepUp stores a step-up's browser binding; a lost race reads as
// another browser's.
func (b *Broker) bindStepUp(ctx context.Context, su storage.StepUp, sealed []byte) error {
	err := b.stepups.Bind(ctx, su, sealed, b.now().UTC())
	if errors.Is(err, stepup.ErrNotPending) {
		return errBoundElsewhere
	}
	return err
}

// stepUpCallback finishes a step-up's callback once every check of the
// callback passed: view is the connection as stepup.View shows it. The
// step-up leaves pending exactly once; only a completed exchange touches
// the connection, and then all at once.
func (b *Broker) stepUpCallback(w http.ResponseWriter, r *http.Request, view storage.Connection, su storage.StepUp,
	prov registry.Provider, ends registry.Endpoints, provErr, code string, kept map[string]string) {
	ctx := r.Context()
	reason := sanitizeErrorCode(provErr)
	sealed, err := b.stepups.Claim(ctx, su, reason, b.now().UTC())
	switch {
	case errors.Is(err, stepup.ErrNotPending):
		b.rejectCallback(w, r, callbackRejection{reason: "replayed", message: "This sign-in link has already been used."})
		return
	case errors.Is(err, storage.ErrUnavailable):
		b.rejectCallback(w, r, errStoreUnavailable)
		return
	case err != nil:
		b.log.ErrorContext(ctx, "callback: step-up transition", "err", err)
		b.rejectCallback(w, r, callbackRejection{reason: "storage_error", message: "Something went wrong; try again shortly.", status: http.StatusInternalServerError})
		return
	}
	failed := func(reason string) {
		b.auditPublic(r, storage.AuditEvent{Type: stepup.EventFailed, ConnectionID: view.ID, ProviderID: view.ProviderID, Actor: view.ClientName,
			Detail: map[string]string{"step_up_id": su.ID, "reason": reason}})
		b.redirectResult(w, r, view, reason)
	}
	if provErr != "" {
		b.m.callbacks.WithLabelValues("provider_error").Inc()
		failed(reason)
		return
	}
	ctx = context.WithoutCancel(ctx)
	var before []string
	keep := func(ctx context.Context, _ string, x exchanged) error {
		var err error
		before, err = b.stepups.Complete(ctx, su.ID, x.now, func(c storage.Connection) (storage.Connection, storage.Token) {
			x.apply(&c)
			return c, x.token
		})
		return err
	}
	view.Status = storage.StatusExchanging
	if failure := b.completeExchange(ctx, view, prov, ends, code, sealed, kept, grantKeeper{keep: keep, sharesGrant: true}); failure != "" {
		if err := b.stepups.Fail(ctx, su.ID, failure, b.now().UTC()); err != nil && !errors.Is(err, storage.ErrNotFound) {
			b.log.ErrorContext(ctx, "callback: marking step-up failed", "connection_id", view.ID, "err", err)
		}
		b.m.callbacks.WithLabelValues("failed_" + failure).Inc()
		failed(failure)
		return
	}
	b.m.callbacks.WithLabelValues("success").Inc()
	b.auditPublic(r, storage.AuditEvent{Type: stepup.EventScopesChanged, ConnectionID: view.ID, ProviderID: view.ProviderID, Actor: view.ClientName,
		Detail: map[string]string{"step_up_id": su.ID, "from": stepup.Scopes(before), "to": stepup.Scopes(su.Scopes)}})
	b.log.InfoContext(ctx, "connection stepped up", "connection_id", view.ID, "provider", view.ProviderName)
	b.redirectResult(w, r, view, "")
}

// stepUpView is the step_up member of a connection's answer.
type stepUpView struct {
	Status string   `json:"status"` // pending, completed or failed
	Reason string   `json:"reason,omitempty"`
	Scopes []string `json:"scopes"`
}

func (b *Broker) viewStepUp(ctx context.Context, connID string) (*stepUpView, error) {
	rep, ok, err := b.stepups.Latest(ctx, connID, b.now())
	if err != nil || !ok {
		return nil, err
	}
	v := &stepUpView{Status: rep.Status, Reason: rep.Reason, Scopes: rep.Scopes}
	if v.Scopes == nil {
		v.Scopes = []string{}
	}
	return v, nil
}
