package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/dromos-dev/dromos/internal/confirm"
	"github.com/dromos-dev/dromos/internal/ctrlchar"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/storage"
)

// confirmPath is the public route the browser takes for the browser step
// of a user confirmation.
const confirmPath = "/auth/confirm"

// Error codes of POST /connections/confirm.
const (
	codeInvalidConfirmation = "invalid_confirmation"
	codeConfirmationOver    = "confirmation_over"
)

// firstKeeper is how a first consent's (or a reconnect's) grant is kept:
// as active, or, when the agent asked for its user's confirmation, sealed
// while the connection awaits it. The value returned then goes to the
// browser (confirm_url); only its digest is stored.
func (b *Broker) firstKeeper(conn storage.Connection) (grantKeeper, confirm.Value, error) {
	if conn.ConfirmURL == "" {
		return grantKeeper{keep: b.keepAsActive}, "", nil
	}
	v, digest, err := confirm.New(b.randReader(), conn.ID)
	if err != nil {
		return grantKeeper{}, "", err
	}
	keep := func(ctx context.Context, connID string, x exchanged) error {
		_, err := b.store.UpdateConnection(ctx, connID, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
			if c.Status != storage.StatusExchanging {
				return c, storage.TokenChange{}, fmt.Errorf("%w (now %s)", errLeftExchanging, c.Status)
			}
			// The sealed PKCE material stays: it holds the flow's browser
			// binding, which the browser step checks.
			c = confirm.Begin(c, digest, x.now)
			x.apply(&c)
			return c, storage.TokenChange{Put: &x.token}, nil
		})
		return err
	}
	return grantKeeper{keep: keep}, v, nil
}

// redirectToConfirm sends the browser to the agent's confirm_url with the
// first confirmation value. The flow cookie stays for the browser step.
func (b *Broker) redirectToConfirm(w http.ResponseWriter, r *http.Request, conn storage.Connection, v confirm.Value) {
	u, err := url.Parse(conn.ConfirmURL)
	if err != nil || b.checkReturnURL(conn.ConfirmURL) != nil {
		b.rejectCallback(w, r, callbackRejection{reason: "bad_confirm_url", message: "The application's confirmation address is invalid."})
		return
	}
	u.RawQuery = mergeQuery(u.RawQuery, url.Values{"connection_id": {conn.ID}, "confirmation": {v.Reveal()}})
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// checkConfirmURL validates a consent request's confirmation options.
func (b *Broker) checkConfirmURL(req *consentRequest) error {
	if req.ConfirmURL == "" {
		if req.RequireConfirmation {
			return httpapi.BadRequest("confirm_url is required when confirmation is required")
		}
		return nil
	}
	if len(req.ConfirmURL) > maxReturnURLen {
		return httpapi.BadRequest("confirm_url is at most %d characters", maxReturnURLen)
	}
	if err := ctrlchar.Check("confirm_url", req.ConfirmURL); err != nil {
		return httpapi.BadRequest("%s", err)
	}
	if err := b.checkReturnURL(req.ConfirmURL); err != nil {
		return httpapi.BadRequest("confirm_url: %s", errMessage(err))
	}
	return nil
}

// errMessage is an httpapi error's message (the return-URL check's errors
// are written for agents).
func errMessage(err error) string {
	if e, ok := httpapi.As(err); ok {
		return e.Message
	}
	return "not allowed"
}

type confirmRequest struct {
	Confirmation string `json:"confirmation"`
	UserID       string `json:"user_id"`
	ClientName   string `json:"client_name"`
}

type confirmAnswer struct {
	ConnectionID string `json:"connection_id"`
	Status       string `json:"status"`
	// ContinueURL is where the application sends the browser: the broker
	// checks there that it is the browser that consented.
	ContinueURL string `json:"continue_url"`
}

var errInvalidConfirmation = &httpapi.Error{Status: http.StatusBadRequest, Code: codeInvalidConfirmation,
	Message: "confirmation is not a value this broker issued for a connection awaiting confirmation"}

// confirmConnection is the user step (POST /connections/confirm): the
// application presents the value its confirm_url received and the user id
// it has signed in.
func (b *Broker) confirmConnection(w http.ResponseWriter, r *http.Request) error {
	var req confirmRequest
	if err := httpapi.DecodeJSON(w, r, &req, httpapi.MaxBody); err != nil {
		return err
	}
	if err := requireOwner(r, req.ClientName); err != nil {
		return err
	}
	if req.UserID == "" || len(req.UserID) > maxIDLen {
		return httpapi.BadRequest("user_id is required (at most %d characters)", maxIDLen)
	}
	id, ok := confirm.ConnectionID(req.Confirmation)
	if !ok {
		return errInvalidConfirmation
	}
	next, digest, err := confirm.New(b.randReader(), id)
	if err != nil {
		return err
	}
	ctx := context.WithoutCancel(r.Context())
	res, err := confirm.Run(ctx, b.store, id, func(c storage.Connection) (storage.Connection, confirm.Outcome) {
		if req.ClientName != "" && c.ClientName != req.ClientName {
			// Another agent's connection: as if it did not exist.
			return c, confirm.Refused
		}
		return confirm.User(c, req.Confirmation, req.UserID, digest, b.now().UTC())
	})
	if errors.Is(err, storage.ErrNotFound) {
		return errInvalidConfirmation
	}
	if err != nil {
		return err
	}
	switch res.Outcome {
	case confirm.Refused:
		return errInvalidConfirmation
	case confirm.Over:
		return httpapi.Conflict(codeConfirmationOver, "the connection is %s: no confirmation is running", res.Conn.Status)
	case confirm.Failed:
		b.confirmationFailed(ctx, r, res)
		return httpapi.Conflict(res.Conn.StatusReason, "confirmation failed (%s): the connection is failed and its tokens revoked", res.Conn.StatusReason)
	}
	b.audit(r, storage.AuditEvent{Type: "confirmation.user_matched", ConnectionID: id, ProviderID: res.Conn.ProviderID, Actor: res.Conn.ClientName})
	httpapi.WriteJSON(w, http.StatusOK, confirmAnswer{ConnectionID: id, Status: string(res.Conn.Status),
		ContinueURL: b.cfg.BaseURL + confirmPath + "?confirmation=" + url.QueryEscape(next.Reveal())})
	return nil
}

// confirmBrowser is the browser step (GET /auth/confirm): the browser the
// application sent on must carry the flow's cookie.
func (b *Broker) confirmBrowser(w http.ResponseWriter, r *http.Request) {
	v, ok := single(r.URL.Query(), "confirmation")
	id, ok2 := confirm.ConnectionID(v)
	if !ok || !ok2 {
		b.rejectCallback(w, r, callbackRejection{reason: "invalid_confirmation", message: "This confirmation link is invalid."})
		return
	}
	ctx := context.WithoutCancel(r.Context())
	res, err := confirm.Run(ctx, b.store, id, func(c storage.Connection) (storage.Connection, confirm.Outcome) {
		bound := b.cfg.InsecureSkipBrowserBinding || b.callbackBound(r, c)
		return confirm.Browser(c, v, bound, b.now().UTC())
	})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		b.rejectCallback(w, r, callbackRejection{reason: "invalid_confirmation", message: "This confirmation link is invalid."})
		return
	case err != nil:
		b.log.ErrorContext(ctx, "confirmation: browser step", "connection_id", id, "err", err)
		b.rejectCallback(w, r, errStoreUnavailable)
		return
	}
	switch res.Outcome {
	case confirm.Refused, confirm.Over:
		b.rejectCallback(w, r, callbackRejection{reason: "invalid_confirmation", message: "This confirmation link is invalid or has already been used."})
	case confirm.Failed:
		b.confirmationFailed(ctx, r, res)
		b.redirectResult(w, r, res.Conn, res.Conn.StatusReason)
	default:
		b.m.callbacks.WithLabelValues("confirmed").Inc()
		b.auditPublic(r, storage.AuditEvent{Type: "confirmation.succeeded", ConnectionID: id, ProviderID: res.Conn.ProviderID, Actor: res.Conn.ClientName})
		b.log.InfoContext(ctx, "connection confirmed and active", "connection_id", id, "provider", res.Conn.ProviderName)
		b.redirectResult(w, r, res.Conn, "")
	}
}

// confirmationFailed revokes the erased grant at the provider and records
// the failure. The value presented is never logged or audited.
func (b *Broker) confirmationFailed(ctx context.Context, r *http.Request, res confirm.Result) {
	b.auditPublic(r, b.revokeFailedConfirmation(ctx, res))
}

// revokeFailedConfirmation revokes a failed confirmation's erased grant,
// counts and logs the failure, and returns its audit event.
func (b *Broker) revokeFailedConfirmation(ctx context.Context, res confirm.Result) storage.AuditEvent {
	revoked := b.revokeAtProvider(ctx, res.Conn, res.Erased)
	b.m.callbacks.WithLabelValues("failed_" + res.Conn.StatusReason).Inc()
	b.log.WarnContext(ctx, "confirmation failed; tokens erased", "connection_id", res.Conn.ID,
		"reason", res.Conn.StatusReason, "revoked_at_provider", revoked)
	return storage.AuditEvent{Type: "confirmation.failed", ConnectionID: res.Conn.ID, ProviderID: res.Conn.ProviderID,
		Actor: res.Conn.ClientName, Detail: map[string]string{"reason": res.Conn.StatusReason, "revoked_at_provider": revoked}}
}

// sweepBatch is how many lapsed confirmations one claim takes.
const sweepBatch = 100

// SweepConfirmations fails every confirmation that lapsed without anyone
// presenting a value (the worker runs it each interval), as a late value
// would: grant revoked at the provider, tokens erased, connection.failed
// for webhooks, confirmation.failed audited. It returns how many it failed.
func (b *Broker) SweepConfirmations(ctx context.Context) (int, error) {
	n := 0
	for {
		res, err := confirm.Sweep(ctx, b.store, b.now().UTC(), sweepBatch)
		// Those written are failed even when the pass then stopped, or the
		// worker is shutting down: their tokens are erased already, so
		// their grants must go now (or be queued for retry) and be
		// audited, whatever ctx says.
		done := context.WithoutCancel(ctx)
		for _, r := range res {
			e := b.revokeFailedConfirmation(done, r)
			e.Time = b.now().UTC()
			if aerr := b.store.AppendAudit(done, e); aerr != nil {
				b.log.WarnContext(ctx, "audit append failed", "type", e.Type, "connection_id", e.ConnectionID, "err", aerr)
			}
		}
		n += len(res)
		if err != nil || len(res) < sweepBatch || ctx.Err() != nil {
			return n, err
		}
	}
}

// lapseConfirmation fails a confirmation that ran out without anyone
// presenting a value, when a read of the connection finds it
// (check-connection polls do): its grant is revoked and erased then, not
// kept sealed. ok says the connection failed now.
func (b *Broker) lapseConfirmation(r *http.Request, c storage.Connection) (storage.Connection, bool) {
	if c.Status != storage.StatusAwaitingConfirmation || b.now().Before(c.ConfirmationExpiresAt) {
		return c, false
	}
	ctx := context.WithoutCancel(r.Context())
	res, err := confirm.Run(ctx, b.store, c.ID, func(cur storage.Connection) (storage.Connection, confirm.Outcome) {
		return confirm.Lapse(cur, b.now().UTC())
	})
	if err != nil {
		b.log.WarnContext(ctx, "confirmation: failing a lapsed confirmation", "connection_id", c.ID, "err", err)
		return c, false
	}
	if res.Outcome != confirm.Failed {
		return c, false
	}
	b.confirmationFailed(ctx, r, res)
	return res.Conn, true
}
