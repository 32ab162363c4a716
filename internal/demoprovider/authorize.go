package demoprovider

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// maxFormBytes bounds every form body the provider reads.
const maxFormBytes = 64 << 10

// maxParamLen bounds state and nonce, which are echoed into redirects and
// tokens.
const maxParamLen = 2048

// pageError is an authorization request that must not be answered with a
// redirect, because the client or its redirect URI cannot be trusted
// (RFC 6749 4.1.2.1): redirecting would make the provider an open redirector.
type pageError struct{ message string }

func (e *pageError) Error() string { return e.message }

// parseAuthorize validates an authorization request. On an *oauthError the
// returned request holds the verified redirect URI and the state to echo.
func (p *Provider) parseAuthorize(q url.Values) (authRequest, error) {
	var req authRequest
	clientID, ok := single(q, "client_id")
	switch {
	case !ok:
		return req, &pageError{"The request names its application more than once."}
	case clientID == "":
		return req, &pageError{"The request does not say which application it comes from (client_id is missing)."}
	case clientID != p.clientID:
		return req, &pageError{"The application is not registered with this provider (unknown client_id)."}
	}
	redirectURI, ok := single(q, "redirect_uri")
	switch {
	case !ok:
		return req, &pageError{"The request gives more than one redirect_uri."}
	case redirectURI == "":
		return req, &pageError{"The request does not say where to return (redirect_uri is missing)."}
	case !p.redirectURIs[redirectURI]:
		return req, &pageError{"The redirect_uri is not registered for this application."}
	}
	req.redirectURI = redirectURI

	// From here on errors go back to the client, with state when there is
	// exactly one.
	state, ok := single(q, "state")
	if !ok {
		return req, errInvalidRequest("state is repeated")
	}
	if len(state) > maxParamLen {
		return req, errInvalidRequest("state is too long")
	}
	req.state = state

	// RFC 6749 3.1: parameters must not be repeated.
	for name, vs := range q {
		if len(vs) > 1 {
			return req, errInvalidRequest(repeatedParam(name))
		}
	}
	if q.Has("request") {
		return req, &oauthError{code: "request_not_supported", description: "request objects are not supported"}
	}
	if q.Has("request_uri") {
		return req, &oauthError{code: "request_uri_not_supported", description: "request_uri is not supported"}
	}
	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		return req, errInvalidRequest("response_type is required")
	default:
		return req, &oauthError{code: "unsupported_response_type", description: "only response_type=code is supported"}
	}
	if rm := q.Get("response_mode"); rm != "" && rm != "query" {
		return req, errInvalidRequest("only response_mode=query is supported")
	}

	scopes, err := parseScopes(q.Get("scope"))
	if err != nil {
		return req, err
	}
	req.scopes = scopes

	// PKCE is mandatory and only S256 is accepted (RFC 7636 4.4.1 answers
	// a missing or unsupported method with invalid_request).
	switch m := q.Get("code_challenge_method"); m {
	case "S256":
	case "":
		return req, errInvalidRequest("code_challenge_method=S256 is required")
	default:
		return req, errInvalidRequest("only code_challenge_method=S256 is supported")
	}
	challenge := q.Get("code_challenge")
	if challenge == "" {
		return req, errInvalidRequest("code_challenge is required")
	}
	if !isS256Challenge(challenge) {
		return req, errInvalidRequest("code_challenge is not a base64url SHA-256 digest")
	}
	req.codeChallenge = challenge

	nonce := q.Get("nonce")
	if len(nonce) > maxParamLen {
		return req, errInvalidRequest("nonce is too long")
	}
	req.nonce = nonce

	// The consent page is always shown, so a request that forbids any
	// interaction cannot succeed (OIDC Core 3.1.2.6).
	if slices.Contains(strings.Fields(q.Get("prompt")), "none") {
		return req, &oauthError{code: "consent_required", description: "this provider always asks for consent"}
	}
	return req, nil
}

// single returns the only value of name, "" when absent; ok is false when
// the parameter is repeated.
func single(q url.Values, name string) (string, bool) {
	vs := q[name]
	switch len(vs) {
	case 0:
		return "", true
	case 1:
		return vs[0], true
	}
	return "", false
}

// repeatedParam names a repeated parameter only when it is one we know, so
// arbitrary request text is never reflected back.
func repeatedParam(name string) string {
	switch name {
	case "response_type", "scope", "code_challenge", "code_challenge_method", "nonce",
		"prompt", "response_mode", "code", "code_verifier", "grant_type", "refresh_token",
		"redirect_uri", "client_id", "client_secret", "token", "token_type_hint", "access_token":
		return name + " is repeated"
	}
	return "a parameter is repeated"
}

// parseScopes splits a scope parameter, drops duplicates and rejects
// unknown scopes.
func parseScopes(raw string) ([]string, error) {
	fields := strings.Fields(raw)
	if len(fields) == 0 {
		return nil, &oauthError{code: "invalid_scope", description: "scope is required"}
	}
	scopes := make([]string, 0, len(fields))
	for _, s := range fields {
		if _, ok := scopeDescription(s); !ok {
			return nil, &oauthError{code: "invalid_scope", description: "a requested scope is not supported"}
		}
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	return scopes, nil
}

// isS256Challenge reports whether s looks like BASE64URL(SHA256(verifier))
// without padding: exactly 43 characters of the base64url alphabet.
func isS256Challenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (p *Provider) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	p.startAuthorize(w, r, r.URL.Query())
}

// startAuthorize validates an authorization request (from the query, or a
// form per OIDC Core 3.1.2.1) and shows the consent page.
func (p *Provider) startAuthorize(w http.ResponseWriter, r *http.Request, q url.Values) {
	req, err := p.parseAuthorize(q)
	var pe *pageError
	var oe *oauthError
	switch {
	case errors.As(err, &pe):
		p.log.InfoContext(r.Context(), "demo provider: authorization request refused", slog.String("reason", pe.message))
		p.writeErrorPage(w, r, http.StatusBadRequest, pe.message)
		return
	case errors.As(err, &oe):
		p.log.InfoContext(r.Context(), "demo provider: authorization request rejected", slog.String("error", oe.code))
		p.redirect(w, r, req.redirectURI, req.state, url.Values{"error": {oe.code}, "error_description": {oe.description}})
		return
	case err != nil:
		p.writeErrorPage(w, r, http.StatusInternalServerError, "Something went wrong.")
		return
	}

	id, err := p.randomToken(32)
	if err != nil {
		p.log.ErrorContext(r.Context(), "demo provider: consent id", slog.Any("error", err))
		p.writeErrorPage(w, r, http.StatusInternalServerError, "Something went wrong.")
		return
	}
	now := p.now()
	p.mu.Lock()
	p.st.prune(now)
	p.st.pending[id] = &pendingConsent{req: req, expiresAt: now.Add(p.codeTTL + pendingGrace)}
	p.stats.ConsentPagesShown++
	p.mu.Unlock()
	p.writeConsent(w, r, http.StatusOK, p.newConsentPage(id, req, DefaultUsername, ""))
}

// handleAuthorizePost takes the consent form; a POST without request_id is
// an authorization request sent as a form.
func (p *Provider) handleAuthorizePost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		p.writeErrorPage(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	form := r.PostForm
	if !form.Has("request_id") {
		p.startAuthorize(w, r, form)
		return
	}
	id := form.Get("request_id")
	decision := form.Get("decision")
	if decision != "approve" && decision != "deny" {
		p.writeErrorPage(w, r, http.StatusBadRequest, "Choose Approve or Deny.")
		return
	}
	username, validName := normalizeUsername(form.Get("username"))
	code, err := p.randomToken(32)
	if err != nil {
		p.log.ErrorContext(r.Context(), "demo provider: code", slog.Any("error", err))
		p.writeErrorPage(w, r, http.StatusInternalServerError, "Something went wrong.")
		return
	}

	now := p.now()
	p.mu.Lock()
	p.st.prune(now)
	pc := p.st.pending[id]
	if pc == nil || !now.Before(pc.expiresAt) {
		delete(p.st.pending, id)
		p.mu.Unlock()
		p.writeErrorPage(w, r, http.StatusBadRequest, "This sign-in request is unknown, has expired or was already answered.")
		return
	}
	req := pc.req
	if decision == "approve" && !validName {
		// Keep the request: the person only needs to fix the name.
		p.mu.Unlock()
		page := p.newConsentPage(id, req, form.Get("username"),
			"Use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit.")
		p.writeConsent(w, r, http.StatusBadRequest, page)
		return
	}
	delete(p.st.pending, id)
	if decision == "deny" {
		p.stats.Denials++
		p.mu.Unlock()
		p.redirect(w, r, req.redirectURI, req.state, url.Values{
			"error": {"access_denied"}, "error_description": {"the user denied the request"},
		})
		return
	}
	p.st.codes[keyOf(code)] = &codeGrant{
		req:       req,
		username:  username,
		authTime:  now,
		expiresAt: now.Add(p.codeTTL),
	}
	p.stats.Approvals++
	p.mu.Unlock()
	p.log.InfoContext(r.Context(), "demo provider: consent approved",
		slog.String("username", username), slog.String("scope", strings.Join(req.scopes, " ")))
	p.redirect(w, r, req.redirectURI, req.state, url.Values{"code": {code}})
}

// redirect sends the browser back to a registered redirect URI with params,
// state and iss (RFC 9207) added to the URI's own query.
func (p *Provider) redirect(w http.ResponseWriter, r *http.Request, redirectURI, state string, params url.Values) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		// Registered URIs were parsed in New; this cannot happen.
		p.writeErrorPage(w, r, http.StatusInternalServerError, "Something went wrong.")
		return
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	if state != "" {
		q.Set("state", state)
	}
	q.Set("iss", p.issuer)
	u.RawQuery = q.Encode()
	noStore(w)
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u.String(), http.StatusFound)
}
