package broker

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/dromos-dev/dromos/internal/pkce"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
)

// The flow is bound to the browser that started it (RFC 9700 §2.1, §4.7):
// the authUrl handed to agents points at GET /auth/start/{state}, which sets
// a cookie holding a hash of the state and only then redirects to the
// provider; the callback requires that cookie. Whoever gets hold of an
// authUrl and finishes consent in another browser — or tricks a victim into
// finishing theirs — is refused.

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

func flowCookieValue(st string) string {
	sum := sha256.Sum256([]byte("dromos-flow:" + st))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (b *Broker) flowCookie(connID, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: b.flowCookieName(connID), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: b.secureCookies(), SameSite: http.SameSiteLaxMode}
}

// browserBound reports whether r carries the flow cookie for st.
func (b *Broker) browserBound(r *http.Request, connID, st string) bool {
	c, err := r.Cookie(b.flowCookieName(connID))
	if err != nil {
		return false
	}
	want := flowCookieValue(st)
	return subtle.ConstantTimeCompare([]byte(c.Value), []byte(want)) == 1
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
	ends, err := b.providers.Endpoints(ctx, prov.Profile)
	if err != nil {
		b.rejectCallback(w, r, callbackRejection{reason: "discovery_unavailable", message: "The provider is unavailable right now; try again shortly.", status: http.StatusServiceUnavailable})
		return
	}
	verifier, err := b.vault.Open(conn.PKCEVerifier, tokenset.VerifierAAD(conn.ID))
	if err != nil {
		b.log.ErrorContext(ctx, "start: opening PKCE verifier", "connection_id", conn.ID, "err", err)
		b.rejectCallback(w, r, callbackRejection{reason: "server_error", message: "Something went wrong; try again shortly.", status: http.StatusInternalServerError})
		return
	}
	target, err := prov.Profile.AuthorizationURL(ends.Auth, provider.AuthRequest{
		ClientID: prov.Profile.ClientID, RedirectURI: b.RedirectURI(), Scopes: conn.Scopes,
		State: st, Nonce: conn.Nonce, CodeChallenge: pkce.ChallengeS256(string(verifier)),
	})
	if err != nil {
		b.rejectCallback(w, r, callbackRejection{reason: "server_error", message: "Something went wrong; try again shortly.", status: http.StatusInternalServerError})
		return
	}
	maxAge := int(conn.ExpiresAt.Sub(b.now()) / time.Second)
	http.SetCookie(w, b.flowCookie(conn.ID, flowCookieValue(st), max(maxAge, 1)))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, target, http.StatusFound)
}

// sameFlow checks that a verified state really describes conn's current
// consent attempt. The expiry, which every attempt sets anew (consent.go
// keeps it distinct to the second), tells a reconnect's state from the one
// of an earlier attempt of the same connection.
func sameFlow(conn storage.Connection, p state.Payload) bool {
	return conn.WorkspaceID == p.WorkspaceID && conn.ProviderID == p.ProviderID && conn.Nonce == p.Nonce &&
		conn.ExpiresAt.Unix() == p.ExpiresAt.Unix()
}
