package broker

import (
	"errors"
	"net/http"
	"strings"

	"github.com/dromos-dev/dromos/internal/credential"
	"github.com/dromos-dev/dromos/internal/registry"
	"github.com/dromos-dev/dromos/internal/storage"
)

// The hosted key form: a request-connection without credentials for an
// api_key or basic provider gets a pending connection whose authUrl is the
// usual /auth/start link. /auth/start binds the browser exactly as for a
// consent, then shows the form instead of redirecting to a provider; the
// post (POST /auth/key) must come from that browser (its flow cookie is
// SameSite=Lax, so a cross-site post carries none), and the browser then
// returns to return_url like after a consent.

// startKeyForm is /auth/start for a key-based provider.
func (b *Broker) startKeyForm(w http.ResponseWriter, r *http.Request, conn storage.Connection, prov registry.Provider, st string) {
	verifier, binding, err := b.openVerifier(conn.ID, conn.PKCEVerifier)
	if err != nil {
		b.log.ErrorContext(r.Context(), "key form: opening flow binding", "connection_id", conn.ID, "err", err)
		b.rejectCallback(w, r, callbackRejection{reason: "server_error", message: "Something went wrong; try again shortly.", status: http.StatusInternalServerError})
		return
	}
	secret, rej := b.bindBrowser(r, conn, nil, verifier, binding)
	if rej != nil {
		b.rejectCallback(w, r, *rej)
		return
	}
	maxAge := int(conn.ExpiresAt.Sub(b.now()).Seconds())
	http.SetCookie(w, b.flowCookie(conn.ID, secret, max(maxAge, 1)))
	credential.WriteForm(w, http.StatusOK, credential.FormPage{Provider: prov.Profile.DisplayName, Type: prov.Profile.CredentialType(), State: st})
}

// submitKeyForm is POST /auth/key: the bound browser hands over the
// credential.
func (b *Broker) submitKeyForm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, credential.MaxFormBody)
	if err := r.ParseForm(); err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		b.rejectCallback(w, r, callbackRejection{reason: "bad_form", message: "The form could not be read."})
		return
	}
	ctx := r.Context()
	st := r.PostForm.Get("state")
	payload, err := b.state.Verify(st)
	if err != nil {
		b.rejectCallback(w, r, callbackRejection{reason: "invalid_state", message: "The sign-in link is invalid or has expired."})
		return
	}
	conn, err := b.store.GetConnection(ctx, payload.ConnectionID)
	if err != nil || !sameFlow(conn, payload) {
		b.rejectCallback(w, r, callbackRejection{reason: "unknown_connection", message: "The sign-in link is invalid or has expired."})
		return
	}
	if conn.Status != storage.StatusPending || !b.now().Before(conn.ExpiresAt) {
		b.rejectCallback(w, r, callbackRejection{reason: "not_pending", message: "This sign-in link has already been used or has expired."})
		return
	}
	if !b.callbackBound(r, conn) {
		b.rejectCallback(w, r, callbackRejection{reason: "browser_mismatch", message: otherBrowserMessage})
		return
	}
	prov, err := b.providers.Lookup(ctx, conn.ProviderID, "")
	if err != nil || !prov.Profile.KeyBased() {
		b.rejectCallback(w, r, callbackRejection{reason: "provider_changed", message: "The provider's registration changed; start connecting again."})
		return
	}
	typ := prov.Profile.CredentialType()
	page := credential.FormPage{Provider: prov.Profile.DisplayName, Type: typ, State: st}
	cred, err := credential.Parse(typ, prov.Profile.CredentialSpec(), credential.FormFields(typ, r.PostForm.Get))
	if err != nil {
		// Parse names the field and the rule, never the value.
		page.Error = strings.TrimPrefix(err.Error(), "credentials: ")
		credential.WriteForm(w, http.StatusBadRequest, page)
		return
	}
	failure := ""
	if v := prov.Profile.CredentialSpec().Verify; v != nil {
		err := credential.Verify(ctx, b.userinfoClient, *v, cred)
		var refused *credential.RefusedError
		switch {
		case errors.As(err, &refused):
			failure = ReasonCredentialRefused
		case err != nil:
			b.log.WarnContext(ctx, "credential verification got no answer", "provider", prov.Row.Name, "err", err)
			page.Error = "The provider did not answer; try again in a moment."
			credential.WriteForm(w, http.StatusBadGateway, page)
			return
		}
	}
	now := b.now().UTC()
	done, err := b.store.UpdateConnection(ctx, conn.ID, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		if c.Status != storage.StatusPending || string(c.PKCEVerifier) != string(conn.PKCEVerifier) {
			return c, storage.TokenChange{}, errNotPending
		}
		c.PKCEVerifier, c.UpdatedAt = nil, now
		if failure != "" {
			c.Status, c.StatusReason = storage.StatusFailed, failure
			return c, storage.TokenChange{}, nil
		}
		c.Status, c.StatusReason = storage.StatusActive, ""
		row, err := sealCredential(b, c, cred, now)
		return c, storage.TokenChange{Put: row}, err
	})
	if errors.Is(err, errNotPending) {
		b.rejectCallback(w, r, callbackRejection{reason: "not_pending", message: "This sign-in link has already been used or has expired."})
		return
	}
	if err != nil {
		b.log.ErrorContext(ctx, "key form: storing the credential", "connection_id", conn.ID, "err", err)
		b.rejectCallback(w, r, callbackRejection{reason: "server_error", message: "Something went wrong; try again shortly.", status: http.StatusInternalServerError})
		return
	}
	detail := map[string]string{"workspace_id": done.WorkspaceID, "type": typ, "status": string(done.Status), "via": "hosted_form"}
	if failure != "" {
		detail["reason"] = failure
	}
	b.auditPublic(r, storage.AuditEvent{Type: "connection.credential_stored", ConnectionID: done.ID, ProviderID: done.ProviderID, Detail: detail})
	b.log.InfoContext(ctx, "key connection stored from the hosted form", "connection_id", done.ID, "provider", prov.Row.Name, "status", done.Status)
	b.redirectResult(w, r, done, failure)
}
