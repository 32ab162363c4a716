package demoprovider

import (
	"log/slog"
	"net/http"
	"time"
)

// handleRevoke implements RFC 7009. A refresh token revokes its whole family
// and the access tokens minted for it; an access token is revoked by jti.
// Unknown, expired or already revoked tokens get 200 like any other (2.2),
// so the answer tells the caller nothing about the token.
func (p *Provider) handleRevoke(w http.ResponseWriter, r *http.Request) {
	form, err := parseClientForm(w, r)
	if err == nil {
		err = p.authenticateClient(r, form)
	}
	if err != nil {
		p.writeOAuthError(w, r, err)
		return
	}
	token := form.Get("token")
	if token == "" {
		p.writeOAuthError(w, r, errInvalidRequest("token is required"))
		return
	}
	// token_type_hint only speeds up a lookup (2.1); both lookups are cheap
	// and cannot both match, so it is ignored.
	now := p.now()
	claims, accessErr := p.verifyAccess(token, now.Unix())

	p.mu.Lock()
	p.st.prune(now)
	revoked := ""
	if e := p.st.refresh[keyOf(token)]; e != nil {
		if f := p.st.families[e.familyID]; f != nil && !f.revoked {
			p.st.revokeFamily(e.familyID)
			revoked = "refresh_token"
		}
	} else if accessErr == nil && !p.st.isRevoked(claims.JWTID) {
		p.st.revokedJTIs[claims.JWTID] = time.Unix(claims.Expiry, 0)
		revoked = "access_token"
	}
	var snap snapshot
	if revoked != "" {
		p.stats.Revocations++
		snap = p.snapshotLocked(now)
	}
	p.mu.Unlock()
	p.persist(r.Context(), snap)

	if revoked != "" {
		p.log.InfoContext(r.Context(), "demo provider: token revoked", slog.String("token_type", revoked))
	}
	noStore(w)
	w.WriteHeader(http.StatusOK)
}
