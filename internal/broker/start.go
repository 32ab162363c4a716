package broker

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/pkce"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
)

// The flow is bound to the browser that started it (RFC 9700 §2.1, §4.7):
// the authUrl handed to agents points at GET /auth/start/{state}. The first
// visit draws a random flow secret, stores its hash with the connection's
// sealed PKCE verifier (a compare-and-swap, so only one browser wins), sets
// the secret as a cookie and only then redirects to the provider. A later
// visit must carry that cookie, and so must the callback. Whoever gets hold
// of an authUrl or its state after the user opened it — or tricks a victim
// into finishing a flow they started — is refused.

const startPath = "/auth/start/"

func (b *Broker) secureCookies() bool { return strings.HasPrefix(b.cfg.BaseURL, "https://") }

// flowCookieName is per connection, so flows started in parallel in one
// browser do not overwrite each other. Over https it carries the __Host-
// prefix (Secure, Path=/, no Domain: only this host can set or read it).
func (b *Broker) flowCookieName(connID string) string {
	name := "dromos_flow_" + strings.ReplaceAll(connID, "-", "")[:12]
	if b.secureCookies() {
		return "__Host-" + name
	}
	return name
}

// flowSecretHash is what the connection keeps of a browser's flow secret.
func flowSecretHash(secret string) string {
	sum := sha256.Sum256([]byte("dromos-flow:" + secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// bindingSep separates the PKCE verifier (base64url, so never holding it)
// from the flow secret's hash inside the sealed verifier.
const bindingSep = "|"

// openVerifier opens a connection's sealed PKCE material: the verifier and,
// once /auth/start bound a browser, the hash of that browser's flow secret
// ("" before).
func (b *Broker) openVerifier(connID string, sealed []byte) (verifier, binding string, err error) {
	plain, err := b.vault.Open(sealed, tokenset.VerifierAAD(connID))
	if err != nil {
		return "", "", err
	}
	verifier, binding, _ = strings.Cut(string(plain), bindingSep)
	return verifier, binding, nil
}

// errBoundElsewhere: another browser bound the flow first.
var errBoundElsewhere = errors.New("flow already bound to another browser")

func (b *Broker) flowCookie(connID, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: b.flowCookieName(connID), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: b.secureCookies(), SameSite: http.SameSiteLaxMode}
}

// browserBound reports whether r carries the flow secret whose hash binding
// is (an unbound flow binds no browser).
func (b *Broker) browserBound(r *http.Request, connID, binding string) bool {
	c, err := r.Cookie(b.flowCookieName(connID))
	if err != nil || binding == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(flowSecretHash(c.Value)), []byte(binding)) == 1
}

// startURL is the broker-side authUrl handed to agents.
func (b *Broker) startURL(st string) string { return b.cfg.BaseURL + startPath + st }

// start binds the browser and sends it on to the provider.
func (b *Broker) start(w http.ResponseWriter, r *http.Request) {
	st := r.PathValue("state")
	payload, err := b.state.Verify(st)
	if err != nil {
		b.rejectCallback(w, r, callbackRejection{reason: "invalid_state", message: "The sign-in link is invalid or has expired."})
		return
	}
	ctx := r.Context()
	conn, err := b.store.GetConnection(ctx, payload.ConnectionID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		b.log.ErrorContext(ctx, "start: loading connection", "err", err)
		b.rejectCallback(w, r, errStoreUnavailable)
		return
	}
	var stepUp *storage.StepUp
	if err == nil {
		var rej *callbackRejection
		if stepUp, conn, rej = b.stepUpFlow(ctx, conn, payload); rej != nil {
			b.rejectCallback(w, r, *rej)
			return
		}
	}
	if err != nil || !sameFlow(conn, payload) {
		b.rejectCallback(w, r, callbackRejection{reason: "unknown_connection", message: "The sign-in link is invalid or has expired."})
		return
	}
	if conn.Status != storage.StatusPending || !b.now().Before(conn.ExpiresAt) {
		b.rejectCallback(w, r, callbackRejection{reason: "not_pending", message: "This sign-in link has already been used or has expired."})
		return
	}
	prov, err := b.providers.Lookup(ctx, conn.ProviderID, "")
	if err != nil {
		b.rejectCallback(w, r, b.providerLookupRejection(ctx, err))
		return
	}
	if prov.Profile.KeyBased() && stepUp == nil {
		b.startKeyForm(w, r, conn, prov, st)
		return
	}
	ends, err := b.providers.Endpoints(ctx, prov)
	if err != nil {
		b.rejectCallback(w, r, callbackRejection{reason: "discovery_unavailable", message: "The provider is unavailable right now; try again shortly.", status: http.StatusServiceUnavailable})
		return
	}
	verifier, binding, err := b.openVerifier(conn.ID, conn.PKCEVerifier)
	if err != nil {
		b.log.ErrorContext(ctx, "start: opening PKCE verifier", "connection_id", conn.ID, "err", err)
		b.rejectCallback(w, r, callbackRejection{reason: "server_error", message: "Something went wrong; try again shortly.", status: http.StatusInternalServerError})
		return
	}
	secret, rej := b.bindBrowser(r, conn, stepUp, verifier, binding)
	if rej != nil {
		b.rejectCallback(w, r, *rej)
		return
	}
	target, err := b.providerAuthURL(ctx, prov, ends, provider.AuthRequest{
		ClientID: prov.Profile.ClientID, RedirectURI: b.RedirectURI(), Scopes: conn.Scopes,
		State: st, Nonce: conn.Nonce, CodeChallenge: pkce.ChallengeS256(string(verifier)), LoginHint: loginHint(conn),
	})
	if err != nil {
		// A pushed request the provider refused or could not take: the
		// same link works again once it answers.
		b.log.WarnContext(ctx, "start: building the authorization request", "connection_id", conn.ID, "provider", prov.Row.Name,
			"class", string(exchange.Classify(err)), "err", err)
		b.rejectCallback(w, r, callbackRejection{reason: "provider_unavailable", message: "The provider is unavailable right now; try again shortly.", status: http.StatusBadGateway})
		return
	}
	maxAge := int(conn.ExpiresAt.Sub(b.now()) / time.Second)
	http.SetCookie(w, b.flowCookie(conn.ID, secret, max(maxAge, 1)))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, target, http.StatusFound)
}

// otherBrowserMessage is the page a consent link shows in any browser but
// the first one that opened it. The link itself can never work there, so
// the page says to ask for a new one (opening it "again" would only fail
// again).
const otherBrowserMessage = "This sign-in was started in another browser. A sign-in link works only in the first " +
	"browser that opens it: ask the application for a new link, and open that one here."

// bindBrowser returns the flow secret of the browser behind r: a new one
// stored with the connection when the flow is not bound yet, else the one
// r's cookie carries, which must be the bound browser's.
func (b *Broker) bindBrowser(r *http.Request, conn storage.Connection, stepUp *storage.StepUp, verifier, binding string) (string, *callbackRejection) {
	elsewhere := &callbackRejection{reason: "browser_mismatch", message: otherBrowserMessage}
	if binding != "" {
		if !b.browserBound(r, conn.ID, binding) {
			return "", elsewhere
		}
		c, _ := r.Cookie(b.flowCookieName(conn.ID))
		return c.Value, nil
	}
	raw := make([]byte, 32)
	if _, err := io.ReadFull(b.randReader(), raw); err != nil {
		return "", &callbackRejection{reason: "server_error", message: "Something went wrong; try again shortly.", status: http.StatusInternalServerError}
	}
	secret := base64.RawURLEncoding.EncodeToString(raw)
	sealed, err := b.vault.Seal([]byte(verifier+bindingSep+flowSecretHash(secret)), tokenset.VerifierAAD(conn.ID))
	if err != nil {
		return "", &callbackRejection{reason: "server_error", message: "Something went wrong; try again shortly.", status: http.StatusInternalServerError}
	}
	if stepUp != nil {
		err = b.bindStepUp(r.Context(), *stepUp, sealed)
	} else {
		_, err = b.store.UpdateConnection(r.Context(), conn.ID, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
			if c.Status != storage.StatusPending || !bytes.Equal(c.PKCEVerifier, conn.PKCEVerifier) {
				return c, storage.TokenChange{}, errBoundElsewhere
			}
			c.PKCEVerifier = sealed
			return c, storage.TokenChange{}, nil
		})
	}
	switch {
	case errors.Is(err, errBoundElsewhere):
		return "", elsewhere
	case errors.Is(err, storage.ErrUnavailable):
		return "", &errStoreUnavailable
	case err != nil:
		b.log.ErrorContext(r.Context(), "start: binding the browser", "connection_id", conn.ID, "err", err)
		return "", &callbackRejection{reason: "server_error", message: "Something went wrong; try again shortly.", status: http.StatusInternalServerError}
	}
	return secret, nil
}

// sameFlow checks that a verified state really describes conn's current
// consent attempt. The expiry, which every attempt sets anew (consent.go
// keeps it distinct to the second), tells a reconnect's state from the one
// of an earlier attempt of the same connection.
func sameFlow(conn storage.Connection, p state.Payload) bool {
	return conn.WorkspaceID == p.WorkspaceID && conn.ProviderID == p.ProviderID && conn.Nonce == p.Nonce &&
		conn.ExpiresAt.Unix() == p.ExpiresAt.Unix()
}
