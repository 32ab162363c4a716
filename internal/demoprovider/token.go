package demoprovider

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// usedCodeRetention is how long a redeemed code is remembered beyond the
// life of the access token it produced, so a replay can still revoke the
// refresh family.
const usedCodeRetention = 10 * time.Minute

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// grant is what a set of tokens is minted from.
type grant struct {
	username string
	scopes   []string
	authTime time.Time
	// nonce goes only into the ID token of a code exchange (OIDC Core
	// 12.2: refreshed ID tokens should not carry it).
	nonce string
}

// newTokens are the identifiers reserved for one token response, drawn
// before taking the lock.
type newTokens struct {
	jti     string
	family  string
	refresh string
}

func (p *Provider) handleToken(w http.ResponseWriter, r *http.Request) {
	resp, err := p.token(w, r)
	if err != nil {
		p.writeOAuthError(w, r, err)
		return
	}
	noStore(w)
	writeJSON(w, http.StatusOK, resp)
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) (tokenResponse, error) {
	form, err := parseClientForm(w, r)
	if err != nil {
		return tokenResponse{}, err
	}
	if err := p.authenticateClient(r, form); err != nil {
		return tokenResponse{}, err
	}
	grantType := form.Get("grant_type")
	p.mu.Lock()
	switch grantType {
	case "authorization_code":
		p.stats.AuthorizationCodeRequests++
	case "refresh_token":
		p.stats.RefreshTokenRequests++
	default:
		p.stats.OtherGrantRequests++
	}
	p.mu.Unlock()

	switch grantType {
	case "authorization_code":
		return p.exchangeCode(r, form)
	case "refresh_token":
		return p.refresh(r, form)
	case "":
		return tokenResponse{}, errInvalidRequest("grant_type is required")
	}
	return tokenResponse{}, &oauthError{code: "unsupported_grant_type", description: "only authorization_code and refresh_token are supported"}
}

func (p *Provider) reserveTokens() (newTokens, error) {
	var t newTokens
	var err error
	if t.jti, err = p.randomToken(16); err != nil {
		return t, err
	}
	if t.family, err = p.randomToken(16); err != nil {
		return t, err
	}
	t.refresh, err = p.randomToken(32)
	return t, err
}

// exchangeCode redeems an authorization code (RFC 6749 4.1.3). The first
// redemption attempt consumes the code whatever its outcome; a second one
// revokes what the first produced (RFC 6749 4.1.2).
func (p *Provider) exchangeCode(r *http.Request, form url.Values) (tokenResponse, error) {
	code, verifier, redirectURI := form.Get("code"), form.Get("code_verifier"), form.Get("redirect_uri")
	switch {
	case code == "":
		return tokenResponse{}, errInvalidRequest("code is required")
	case verifier == "":
		return tokenResponse{}, errInvalidRequest("code_verifier is required")
	case redirectURI == "":
		return tokenResponse{}, errInvalidRequest("redirect_uri is required")
	}
	ids, err := p.reserveTokens()
	if err != nil {
		return tokenResponse{}, err
	}

	now := p.now()
	p.mu.Lock()
	p.st.prune(now)
	g := p.st.codes[keyOf(code)]
	if g == nil || (!g.used && !now.Before(g.expiresAt)) {
		p.mu.Unlock()
		return tokenResponse{}, errInvalidGrant("the code is invalid or has expired")
	}
	if g.used {
		p.st.revokeCode(g)
		p.stats.CodeReuses++
		snap := p.snapshotLocked(now)
		p.mu.Unlock()
		p.persist(r.Context(), snap)
		p.log.WarnContext(r.Context(), "demo provider: authorization code replayed; its tokens are revoked",
			slog.String("username", g.username))
		return tokenResponse{}, errInvalidGrant("the code is invalid or has expired")
	}
	g.used = true
	g.expiresAt = now.Add(p.accessTTL + usedCodeRetention)
	if g.req.redirectURI != redirectURI {
		p.mu.Unlock()
		return tokenResponse{}, errInvalidGrant("redirect_uri does not match the authorization request")
	}
	if !pkceMatches(verifier, g.req.codeChallenge) {
		p.mu.Unlock()
		return tokenResponse{}, errInvalidGrant("code_verifier does not match the code_challenge")
	}

	gr := grant{username: g.username, scopes: g.req.scopes, authTime: g.authTime, nonce: g.req.nonce}
	g.accessJTI = ids.jti
	g.accessExp = now.Add(p.accessTTL)
	refresh := ""
	if slices.Contains(gr.scopes, "offline_access") {
		g.familyID = ids.family
		p.st.families[ids.family] = &refreshFamily{
			username:     gr.username,
			scopes:       gr.scopes,
			authTime:     gr.authTime,
			expiresAt:    now.Add(p.refreshTTL),
			accessTokens: map[string]time.Time{ids.jti: g.accessExp},
		}
		p.st.refresh[keyOf(ids.refresh)] = &refreshEntry{familyID: ids.family, expiresAt: now.Add(p.refreshTTL)}
		refresh = ids.refresh
	}
	p.stats.CodesExchanged++
	var snap snapshot
	if refresh != "" {
		snap = p.snapshotLocked(now)
	}
	p.mu.Unlock()
	p.persist(r.Context(), snap)

	return p.mint(gr, gr.scopes, ids.jti, refresh, now)
}

// refresh runs the refresh_token grant (RFC 6749 6). Every use rotates the
// token; presenting a rotated one means it leaked, so the family dies.
func (p *Provider) refresh(r *http.Request, form url.Values) (tokenResponse, error) {
	presented := form.Get("refresh_token")
	if presented == "" {
		return tokenResponse{}, errInvalidRequest("refresh_token is required")
	}
	var narrowed []string
	if form.Has("scope") {
		var err error
		if narrowed, err = parseScopes(form.Get("scope")); err != nil {
			return tokenResponse{}, err
		}
	}
	ids, err := p.reserveTokens()
	if err != nil {
		return tokenResponse{}, err
	}

	now := p.now()
	p.mu.Lock()
	p.st.prune(now)
	e := p.st.refresh[keyOf(presented)]
	var fam *refreshFamily
	if e != nil && now.Before(e.expiresAt) {
		fam = p.st.families[e.familyID]
	}
	if fam == nil || fam.revoked {
		p.mu.Unlock()
		return tokenResponse{}, errInvalidGrant("the refresh token is invalid, expired or revoked")
	}
	if e.rotated {
		p.st.revokeFamily(e.familyID)
		p.stats.RefreshReuses++
		snap := p.snapshotLocked(now)
		p.mu.Unlock()
		p.persist(r.Context(), snap)
		p.log.WarnContext(r.Context(), "demo provider: rotated refresh token replayed; its family is revoked",
			slog.String("username", fam.username))
		return tokenResponse{}, errInvalidGrant("the refresh token is invalid, expired or revoked")
	}
	scopes := fam.scopes
	if narrowed != nil {
		for _, s := range narrowed {
			if !slices.Contains(fam.scopes, s) {
				p.mu.Unlock()
				return tokenResponse{}, &oauthError{code: "invalid_scope", description: "scope exceeds the original grant"}
			}
		}
		scopes = narrowed
	}
	e.rotated = true
	exp := now.Add(p.refreshTTL)
	p.st.refresh[keyOf(ids.refresh)] = &refreshEntry{familyID: e.familyID, expiresAt: exp}
	fam.expiresAt = exp
	fam.accessTokens[ids.jti] = now.Add(p.accessTTL)
	gr := grant{username: fam.username, scopes: fam.scopes, authTime: fam.authTime}
	p.stats.Refreshes++
	snap := p.snapshotLocked(now)
	p.mu.Unlock()
	p.persist(r.Context(), snap)

	return p.mint(gr, scopes, ids.jti, ids.refresh, now)
}

// mint signs the access token and, when openid is granted, the ID token.
func (p *Provider) mint(g grant, scopes []string, jti, refresh string, now time.Time) (tokenResponse, error) {
	scope := strings.Join(scopes, " ")
	sub := Subject(g.username)
	exp := now.Add(p.accessTTL)
	at, err := sign(p.keys.access, accessClaims{
		Issuer:   p.issuer,
		Subject:  sub,
		Audience: p.clientID,
		ClientID: p.clientID,
		Expiry:   exp.Unix(),
		IssuedAt: now.Unix(),
		JWTID:    jti,
		Scope:    scope,
		AuthTime: g.authTime.Unix(),
		Username: g.username,
	})
	if err != nil {
		return tokenResponse{}, err
	}
	resp := tokenResponse{
		AccessToken:  at,
		TokenType:    "Bearer",
		ExpiresIn:    int64(p.accessTTL / time.Second),
		Scope:        scope,
		RefreshToken: refresh,
	}
	if !slices.Contains(scopes, "openid") {
		return resp, nil
	}
	claims := idClaims{
		Issuer:          p.issuer,
		Subject:         sub,
		Audience:        p.clientID,
		Expiry:          exp.Unix(),
		IssuedAt:        now.Unix(),
		AuthTime:        g.authTime.Unix(),
		Nonce:           g.nonce,
		AccessTokenHash: accessTokenHash(at),
	}
	if slices.Contains(scopes, "email") {
		verified := true
		claims.Email, claims.EmailVerified = emailOf(g.username), &verified
	}
	if slices.Contains(scopes, "profile") {
		claims.Name, claims.PreferredUsername = displayName(g.username), g.username
	}
	if resp.IDToken, err = sign(p.keys.id, claims); err != nil {
		return tokenResponse{}, err
	}
	return resp, nil
}

// pkceMatches checks a code_verifier against an S256 challenge
// (RFC 7636 4.1, 4.6).
func pkceMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for i := 0; i < len(verifier); i++ {
		c := verifier[i]
		unreserved := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~'
		if !unreserved {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}
