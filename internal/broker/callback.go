package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dromos-dev/dromos/internal/connmeta"
	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/registry"
	"github.com/dromos-dev/dromos/internal/revocation"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
)

var errNotPending = errors.New("connection is not pending")

// callbackRejection is a callback refused before anything changed: the
// browser gets a fixed page that echoes nothing from the request.
type callbackRejection struct {
	reason  string // for logs and metrics
	message string // shown to the person
	// status is the answer's status: 0 means 400, the link is at fault;
	// problems on the broker's side say so (500, 503).
	status int
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dromos: connection failed</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}</style></head>
<body><h1>This sign-in link cannot be used</h1><p>{{.}}</p>
<p>Go back to the application and start connecting again.</p></body></html>
`))

func (b *Broker) rejectCallback(w http.ResponseWriter, r *http.Request, rej callbackRejection) {
	b.m.callbacks.WithLabelValues("rejected_" + rej.reason).Inc()
	b.rejections.Record(rej.reason, b.clientIP(r))
	b.log.WarnContext(r.Context(), "callback rejected", "reason", rej.reason)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	status := rej.status
	if status == 0 {
		status = http.StatusBadRequest
	}
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "5")
	}
	w.WriteHeader(status)
	_ = errorPage.Execute(w, rej.message)
}

// callbackBound reports whether the callback comes from the browser that
// /auth/start bound to conn's flow.
func (b *Broker) callbackBound(r *http.Request, conn storage.Connection) bool {
	_, binding, err := b.openVerifier(conn.ID, conn.PKCEVerifier)
	return err == nil && b.browserBound(r, conn.ID, binding)
}

// errStoreUnavailable answers a browser when the database cannot be read.
var errStoreUnavailable = callbackRejection{reason: "store_unavailable", status: http.StatusServiceUnavailable,
	message: "Dromos cannot complete sign-ins right now; try again in a few minutes."}

// providerLookupRejection is the browser's answer when a connection's
// provider cannot be looked up: gone (400), or not readable now (503).
func (b *Broker) providerLookupRejection(ctx context.Context, err error) callbackRejection {
	if he, ok := httpapi.As(err); ok && he.Status == http.StatusNotFound {
		return callbackRejection{reason: "unknown_provider", message: "The provider of this connection is no longer configured."}
	}
	b.log.ErrorContext(ctx, "loading the connection's provider", "err", err)
	return errStoreUnavailable
}

// single returns the only value of key, or ok=false if it is repeated.
func single(q url.Values, key string) (string, bool) {
	v := q[key]
	switch len(v) {
	case 0:
		return "", true
	case 1:
		return v[0], true
	default:
		return "", false
	}
}

// callback is the provider's redirect target. Order matters: everything that
// can be checked without changing state is checked first; the connection
// then leaves pending exactly once (a row-locked compare-and-swap), and only
// the winner talks to the provider.
func (b *Broker) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	stateParam, ok1 := single(q, "state")
	code, ok2 := single(q, "code")
	provErr, ok3 := single(q, "error")
	iss, ok4 := single(q, "iss")
	if !ok1 || !ok2 || !ok3 || !ok4 {
		b.rejectCallback(w, r, callbackRejection{reason: "repeated_parameter", message: "The sign-in response was malformed."})
		return
	}
	if stateParam == "" {
		b.rejectCallback(w, r, callbackRejection{reason: "missing_state", message: "The sign-in response was malformed."})
		return
	}
	payload, err := b.state.Verify(stateParam)
	if err != nil {
		b.rejectCallback(w, r, callbackRejection{reason: "invalid_state", message: "The sign-in link is invalid or has expired."})
		return
	}
	ctx := r.Context()
	conn, err := b.store.GetConnection(ctx, payload.ConnectionID)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			b.log.ErrorContext(ctx, "callback: loading connection", "err", err)
			b.rejectCallback(w, r, errStoreUnavailable)
			return
		}
		b.rejectCallback(w, r, callbackRejection{reason: "unknown_connection", message: "The sign-in link is invalid or has expired."})
		return
	}
	stepUp, conn, rej := b.stepUpFlow(ctx, conn, payload)
	if rej != nil {
		b.rejectCallback(w, r, *rej)
		return
	}
	if !sameFlow(conn, payload) {
		b.rejectCallback(w, r, callbackRejection{reason: "foreign_state", message: "The sign-in link is invalid or has expired."})
		return
	}
	if !b.cfg.InsecureSkipBrowserBinding && !b.callbackBound(r, conn) {
		b.rejectCallback(w, r, callbackRejection{reason: "browser_mismatch", message: otherBrowserMessage})
		return
	}
	if conn.Status != storage.StatusPending {
		b.rejectCallback(w, r, callbackRejection{reason: "replayed", message: "This sign-in link has already been used."})
		return
	}
	if !b.now().Before(conn.ExpiresAt) {
		b.rejectCallback(w, r, callbackRejection{reason: "expired", message: "The sign-in link is invalid or has expired."})
		return
	}
	if provErr == "" && code == "" {
		b.rejectCallback(w, r, callbackRejection{reason: "missing_code", message: "The sign-in response was malformed."})
		return
	}
	if len(code) > 4096 {
		b.rejectCallback(w, r, callbackRejection{reason: "oversized_code", message: "The sign-in response was malformed."})
		return
	}
	prov, err := b.providers.Lookup(ctx, conn.ProviderID, "")
	if err != nil {
		b.rejectCallback(w, r, b.providerLookupRejection(ctx, err))
		return
	}
	kept, err := prov.Profile.CallbackValues(q)
	if err != nil {
		b.rejectCallback(w, r, callbackRejection{reason: "bad_callback_param", message: "The sign-in response was malformed."})
		return
	}
	ends, err := b.providers.Endpoints(ctx, prov)
	if err != nil {
		b.log.WarnContext(ctx, "callback: provider endpoints unavailable", "err", err)
		b.rejectCallback(w, r, callbackRejection{reason: "discovery_unavailable", message: "The provider is unavailable right now; try again shortly.", status: http.StatusServiceUnavailable})
		return
	}
	// RFC 9207: an authorization response from another issuer is a mix-up
	// attack; refuse it before any code leaves this process.
	if (ends.IssParameter || iss != "") && ends.Issuer != "" && iss != ends.Issuer {
		b.rejectCallback(w, r, callbackRejection{reason: "issuer_mismatch", message: "The sign-in response came from an unexpected issuer."})
		return
	}
	if stepUp != nil {
		b.stepUpCallback(w, r, conn, *stepUp, prov, ends, provErr, code, kept)
		return
	}

	// The one transition out of pending. Losers of a race see errNotPending.
	var sealedVerifier []byte
	next := storage.StatusExchanging
	if provErr != "" {
		next = storage.StatusFailed
	}
	reason := sanitizeErrorCode(provErr)
	conn, err = b.store.UpdateConnection(ctx, conn.ID, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		// The verifier checked for the browser binding is still the one
		// stored: the flow was not re-bound or restarted meanwhile.
		if c.Status != storage.StatusPending || !bytes.Equal(c.PKCEVerifier, conn.PKCEVerifier) {
			return c, storage.TokenChange{}, errNotPending
		}
		sealedVerifier = c.PKCEVerifier
		c.Status, c.UpdatedAt = next, b.now().UTC()
		if next == storage.StatusFailed {
			c.StatusReason, c.PKCEVerifier = reason, nil
		}
		return c, storage.TokenChange{}, nil
	})
	if errors.Is(err, errNotPending) {
		b.rejectCallback(w, r, callbackRejection{reason: "replayed", message: "This sign-in link has already been used."})
		return
	}
	if err != nil {
		b.log.ErrorContext(ctx, "callback: state transition", "err", err)
		if errors.Is(err, storage.ErrUnavailable) {
			b.rejectCallback(w, r, errStoreUnavailable)
			return
		}
		b.rejectCallback(w, r, callbackRejection{reason: "storage_error", message: "Something went wrong; try again shortly.", status: http.StatusInternalServerError})
		return
	}
	if provErr != "" {
		b.m.callbacks.WithLabelValues("provider_error").Inc()
		b.auditPublic(r, storage.AuditEvent{Type: "callback.failed", ConnectionID: conn.ID, ProviderID: conn.ProviderID, Actor: conn.ClientName,
			Detail: map[string]string{"reason": reason}})
		b.redirectResult(w, r, conn, reason)
		return
	}

	// Past this point the connection is ours alone: finish it as active
	// (or awaiting confirmation) or failed, even if the browser goes away.
	ctx = context.WithoutCancel(ctx)
	keeper, confirmation, err := b.firstKeeper(conn)
	failure := "server_error"
	if err == nil {
		failure = b.completeExchange(ctx, conn, prov, ends, code, sealedVerifier, kept, keeper)
	}
	if failure != "" {
		_, err := b.store.UpdateConnection(ctx, conn.ID, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
			if c.Status != storage.StatusExchanging {
				// Deleted meanwhile, or a new attempt started: not ours.
				return c, storage.TokenChange{}, errLeftExchanging
			}
			c.Status, c.StatusReason, c.PKCEVerifier, c.UpdatedAt = storage.StatusFailed, failure, nil, b.now().UTC()
			return c, storage.TokenChange{Delete: true}, nil
		})
		if errors.Is(err, errLeftExchanging) || errors.Is(err, storage.ErrNotFound) {
			b.log.InfoContext(ctx, "callback: connection moved on during the exchange; left as it is", "connection_id", conn.ID)
		} else if err != nil {
			b.log.ErrorContext(ctx, "callback: marking connection failed", "connection_id", conn.ID, "err", err)
		}
		b.m.callbacks.WithLabelValues("failed_" + failure).Inc()
		b.auditPublic(r, storage.AuditEvent{Type: "callback.failed", ConnectionID: conn.ID, ProviderID: conn.ProviderID, Actor: conn.ClientName,
			Detail: map[string]string{"reason": failure}})
		b.redirectResult(w, r, conn, failure)
		return
	}
	b.m.callbacks.WithLabelValues("success").Inc()
	b.auditPublic(r, storage.AuditEvent{Type: "callback.succeeded", ConnectionID: conn.ID, ProviderID: conn.ProviderID, Actor: conn.ClientName})
	if confirmation != "" {
		b.log.InfoContext(ctx, "connection awaiting confirmation", "connection_id", conn.ID, "provider", conn.ProviderName)
		b.redirectToConfirm(w, r, conn, confirmation)
		return
	}
	b.log.InfoContext(ctx, "connection active", "connection_id", conn.ID, "provider", conn.ProviderName)
	b.redirectResult(w, r, conn, "")
}

// errLeftExchanging: the connection stopped being exchanging (deleted, or
// a new attempt) while this callback exchanged its code.
var errLeftExchanging = errors.New("connection left exchanging while the code was exchanged")

// completeExchange exchanges the code, verifies the id_token and stores the
// sealed token set, moving the connection to active. It returns "" on
// success or the short failure reason. A grant the provider issued but
// that is not kept (bad id_token, connection deleted meanwhile…) is
// revoked at the provider when it has a revocation endpoint, so no live
// grant is left that nobody holds; a grant of another account
// (identity_mismatch) is left alone, as it may serve other connections.
func (b *Broker) completeExchange(ctx context.Context, conn storage.Connection, prov registry.Provider, ends registry.Endpoints, code string, sealedVerifier []byte, kept map[string]string, keeper grantKeeper) (failure string) {
	verifier, _, err := b.openVerifier(conn.ID, sealedVerifier)
	if err != nil {
		b.log.ErrorContext(ctx, "callback: opening PKCE verifier", "connection_id", conn.ID, "err", err)
		return "server_error"
	}
	clientSecret, err := b.providers.ClientSecret(prov)
	if err != nil {
		b.log.ErrorContext(ctx, "callback: opening client secret", "provider", prov.Row.Name, "err", err)
		return "server_error"
	}
	ep := prov.TokenEndpoint(ends, clientSecret)
	// The exchange spends the provider's call budget like a read's refresh.
	b.refresher.TakeExchange(ctx, prov.Row.ID, prov.Row.Name, prov.Profile)
	start := b.now()
	tok, err := b.xchg.ExchangeCode(ctx, ep, code, string(verifier), b.RedirectURI())
	b.m.exchangeSeconds.Observe(b.now().Sub(start).Seconds())
	if err != nil {
		b.refresher.ProviderAnswered(ctx, prov.Row.ID, prov.Row.Name, err)
		class := exchange.Classify(err)
		b.m.exchanges.WithLabelValues("error").Inc()
		b.log.WarnContext(ctx, "code exchange failed", "connection_id", conn.ID, "provider", prov.Row.Name,
			"class", string(class), "err", err)
		return "exchange_failed"
	}
	return b.keepGrant(ctx, conn, prov, ends, ep, tok, kept, keeper)
}

// keepGrant checks what a grant (a code exchange's or a device poll's)
// brought: the token response against the provider's quirks, the
// id_token when there is one or openid was asked for, the bound or
// expected account and the provider data; then it seals the token set and
// hands it to keeper. It returns "" on success or the short failure
// reason; a grant that is not kept is revoked as completeExchange says.
func (b *Broker) keepGrant(ctx context.Context, conn storage.Connection, prov registry.Provider, ends registry.Endpoints, ep exchange.Endpoint, tok *exchange.Token, kept map[string]string, keeper grantKeeper) (failure string) {
	// unexpected: the account is not the one the agent expected.
	unexpected := false
	defer func() {
		// Not for identity_mismatch: that grant belongs to another of the
		// user's accounts, and at providers that revoke per user and client
		// (Google) revoking it would end that account's other connections.
		if failure != "" && (failure != "identity_mismatch" || unexpected) && !keeper.sharesGrant {
			b.revokeUnkept(ctx, conn.ID, ends, ep, tok)
		}
	}()
	if err := prov.Profile.NormalizeTokenResponse(tok); err != nil {
		b.m.exchanges.WithLabelValues("error").Inc()
		b.log.WarnContext(ctx, "token response refused by provider quirks", "connection_id", conn.ID, "provider", prov.Row.Name, "err", err)
		return "exchange_failed"
	}
	b.m.exchanges.WithLabelValues("success").Inc()

	var claims *idClaims
	if tok.IDToken != "" || slices.Contains(conn.Scopes, "openid") {
		c, reason := b.verifyIDToken(ctx, conn, prov, ends, tok.IDToken)
		if reason != "" {
			return reason
		}
		claims = c
		// Optional userinfo: an e-mail the id_token lacked, but only from an
		// answer about the same subject.
		if ends.Userinfo != "" && claims.Email == "" {
			if u, err := b.fetchUserinfo(ctx, ends.Userinfo, tok.AccessToken); err != nil {
				b.log.InfoContext(ctx, "userinfo not used", "connection_id", conn.ID, "err", err)
			} else if u.Subject != claims.Subject {
				b.log.WarnContext(ctx, "userinfo ignored: sub differs from the id_token's", "connection_id", conn.ID)
			} else {
				claims.Email = u.verifiedEmail()
			}
		}
		// A reconnect must bring back the same account it was bound to.
		if conn.Subject != "" && (c.Subject != conn.Subject || c.Issuer != conn.Issuer) {
			b.log.WarnContext(ctx, "reconnect refused: a different account consented", "connection_id", conn.ID)
			return "identity_mismatch"
		}
	}
	if failure := b.checkExpectedIdentity(ctx, conn, claims); failure != "" {
		// An account the agent did not name: its grant is revoked (issue
		// 20), unlike a reconnect's other account above.
		unexpected = true
		return failure
	}
	if conn.Subject != "" && claims == nil {
		// Bound to an account, but nothing proved which one came back.
		b.log.WarnContext(ctx, "reconnect refused: no id_token to prove the bound account", "connection_id", conn.ID)
		return "identity_mismatch"
	}
	data, failure := b.providerData(ctx, conn, prov, tok, kept)
	if failure != "" {
		return failure
	}
	set := tokenset.New(tok, prov.Profile, b.now().UTC())
	sealed, err := tokenset.Seal(b.vault, conn, set)
	if err != nil {
		b.log.ErrorContext(ctx, "callback: sealing token", "err", err)
		return "server_error"
	}
	now := b.now().UTC()
	stored := storage.Token{ConnectionID: conn.ID, Ciphertext: sealed, AADVersion: tokenset.AADVersion, ExpiresAt: set.Expiry,
		ExpirySource: set.ExpirySource, CreatedAt: now, UpdatedAt: now}
	if err := keeper.keep(ctx, conn.ID, exchanged{claims: claims, data: data, token: stored, now: now}); err != nil {
		b.log.ErrorContext(ctx, "callback: storing token", "connection_id", conn.ID, "err", err)
		return "server_error"
	}
	return ""
}

// exchanged is what a successful code exchange produced.
type exchanged struct {
	claims *idClaims
	data   map[string]string
	token  storage.Token
	now    time.Time
}

// grantKeeper stores the outcome of a code exchange.
type grantKeeper struct {
	keep func(ctx context.Context, connID string, x exchanged) error
	// sharesGrant: the connection still holds a grant of the same user and
	// client (a step-up), so a grant that is not kept is not revoked: at
	// providers that revoke per user and client, the current one would go
	// with it.
	sharesGrant bool
}

// keepAsActive stores a first consent's (or a reconnect's) grant and moves
// the connection from exchanging to active.
func (b *Broker) keepAsActive(ctx context.Context, connID string, x exchanged) error {
	_, err := b.store.UpdateConnection(ctx, connID, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		if c.Status != storage.StatusExchanging {
			return c, storage.TokenChange{}, fmt.Errorf("%w (now %s)", errLeftExchanging, c.Status)
		}
		c.Status, c.StatusReason, c.PKCEVerifier, c.UpdatedAt = storage.StatusActive, "", nil, x.now
		x.apply(&c)
		return c, storage.TokenChange{Put: &x.token}, nil
	})
	return err
}

// apply records the verified identity and the provider data on c.
func (x exchanged) apply(c *storage.Connection) {
	if x.claims != nil {
		c.Subject, c.Email, c.Issuer = x.claims.Subject, x.claims.Email, x.claims.Issuer
	}
	// Provider data replaces what an earlier consent of this connection
	// left.
	for k := range c.Metadata {
		if _, ok := provider.DataKey(k); ok {
			delete(c.Metadata, k)
		}
	}
	for k, v := range x.data {
		if c.Metadata == nil {
			c.Metadata = map[string]json.RawMessage{}
		}
		c.Metadata[provider.ProviderDataPrefix+k] = connmeta.String(v)
	}
}

// providerData gathers what the provider handed over besides the token,
// for agents' API calls: kept callback parameters (QuickBooks realmId,
// Shopify shop), token response members (Salesforce instance_url) and the
// answer of a resource lookup (Atlassian cloud ids, Xero tenants). A token
// response member of the wrong shape fails the exchange; a failed lookup
// does not (the token is good; agents can look the resources up
// themselves) and is logged.
func (b *Broker) providerData(ctx context.Context, conn storage.Connection, prov registry.Provider, tok *exchange.Token, kept map[string]string) (map[string]string, string) {
	fromToken, err := prov.Profile.TokenData(tok.Extra)
	if err != nil {
		b.log.WarnContext(ctx, "token response refused by provider quirks", "connection_id", conn.ID, "provider", prov.Row.Name, "err", err)
		return nil, "exchange_failed"
	}
	lookup, endpoint := prov.Profile.Resources()
	var found map[string]string
	if lookup != nil {
		found, err = b.fetchResources(ctx, lookup, endpoint, tok.AccessToken)
		if err != nil {
			b.log.WarnContext(ctx, "resource lookup failed; the connection has no resource ids", "connection_id", conn.ID,
				"provider", prov.Row.Name, "err", err)
		}
	}
	data := make(map[string]string, len(kept)+len(fromToken)+len(found))
	maps.Copy(data, kept)
	maps.Copy(data, fromToken)
	maps.Copy(data, found)
	return data, ""
}

// sanitizeErrorCode keeps a provider's error code only if it looks like one
// (RFC 6749 error codes are short ASCII); anything else becomes a fixed word
// so the redirect never carries attacker-chosen text.
func sanitizeErrorCode(s string) string {
	if s == "" {
		return ""
	}
	if len(s) > 64 {
		return "provider_error"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return "provider_error"
		}
	}
	return s
}

// redirectResult sends the browser back to the agent's return_url with the
// outcome merged into the query it already has.
func (b *Broker) redirectResult(w http.ResponseWriter, r *http.Request, conn storage.Connection, failure string) {
	// Checked again: the allow-list may have changed since consent.
	u, err := url.Parse(conn.ReturnURL)
	if err != nil || b.checkReturnURL(conn.ReturnURL) != nil {
		b.rejectCallback(w, r, callbackRejection{reason: "bad_return_url", message: "The application's return address is invalid."})
		return
	}
	outcome := url.Values{"connection_id": {conn.ID}, "status": {"success"}}
	if failure != "" {
		outcome.Set("status", "error")
		outcome.Set("error", failure)
	}
	u.RawQuery = mergeQuery(u.RawQuery, outcome)
	http.SetCookie(w, b.flowCookie(conn.ID, "", -1))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// revokeUnkept revokes a grant the code exchange produced but the broker
// did not store; when the provider fails, the revocation is kept and
// retried like a deleted connection's (package revocation).
func (b *Broker) revokeUnkept(ctx context.Context, connID string, ends registry.Endpoints, ep exchange.Endpoint, tok *exchange.Token) {
	if ends.Revocation == "" || (tok.RefreshToken == "" && tok.AccessToken == "") {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// Retries find the provider again through the connection's provider
	// id; a connection already deleted leaves only this attempt.
	var providerID string
	if c, err := b.store.GetConnection(ctx, connID); err == nil {
		providerID = c.ProviderID
	}
	out, err := b.revoker.RevokeAt(ctx, connID, providerID, revocation.Target{URL: ends.Revocation, Endpoint: ep}, nil,
		revocation.Tokens{RefreshToken: tok.RefreshToken, AccessToken: tok.AccessToken})
	if err != nil || out != revocation.Revoked {
		b.log.WarnContext(ctx, "revoking a grant that was not stored failed", "connection_id", connID, "outcome", string(out), "err", err)
		return
	}
	b.log.InfoContext(ctx, "revoked a grant that was not stored", "connection_id", connID)
}

// mergeQuery appends the outcome to the agent's query as it was written:
// pairs the agent put there are kept byte for byte (url.ParseQuery would
// drop any holding a ';'), except earlier status, error and connection_id
// pairs, which the outcome replaces.
func mergeQuery(raw string, outcome url.Values) string {
	var kept []string
	for _, pair := range strings.Split(raw, "&") {
		if pair == "" {
			continue
		}
		key, _, _ := strings.Cut(pair, "=")
		if k, err := url.QueryUnescape(key); err == nil {
			if _, replaced := outcome[k]; replaced {
				continue
			}
		}
		kept = append(kept, pair)
	}
	return strings.Join(append(kept, outcome.Encode()), "&")
}
