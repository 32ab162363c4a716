package demoprovider

import (
	"mime"
	"net/http"
	"slices"
	"strings"
)

type userinfoResponse struct {
	Subject           string `json:"sub"`
	Email             string `json:"email,omitempty"`
	EmailVerified     *bool  `json:"email_verified,omitempty"`
	Name              string `json:"name,omitempty"`
	PreferredUsername string `json:"preferred_username,omitempty"`
}

// handleUserinfo serves OIDC Core 5.3 with the claims the token's scopes
// allow.
func (p *Provider) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	token, err := bearerToken(w, r)
	if err != nil {
		bearerChallenge(w, "invalid_request", "the access token is malformed", http.StatusBadRequest)
		return
	}
	if token == "" {
		// RFC 6750 3.1: no error code when the request had no credentials.
		w.Header().Set("WWW-Authenticate", `Bearer realm="dromos-demo"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	now := p.now()
	claims, err := p.verifyAccess(token, now.Unix())
	if err == nil {
		p.mu.Lock()
		if p.st.isRevoked(claims.JWTID) {
			err = errInvalidToken
		}
		p.mu.Unlock()
	}
	if err != nil {
		bearerChallenge(w, "invalid_token", "the access token is invalid, expired or revoked", http.StatusUnauthorized)
		return
	}
	scopes := strings.Fields(claims.Scope)
	if !slices.Contains(scopes, "openid") {
		bearerChallenge(w, "insufficient_scope", "userinfo needs the openid scope", http.StatusForbidden)
		return
	}
	resp := userinfoResponse{Subject: claims.Subject}
	if slices.Contains(scopes, "email") {
		verified := true
		resp.Email, resp.EmailVerified = emailOf(claims.Username), &verified
	}
	if slices.Contains(scopes, "profile") {
		resp.Name, resp.PreferredUsername = displayName(claims.Username), claims.Username
	}
	p.mu.Lock()
	p.stats.UserinfoRequests++
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

// bearerToken finds the token in the Authorization header or, for a form
// POST, the access_token field (RFC 6750 2.1, 2.2). It returns "" when the
// request carries none, and an error when it carries a malformed or
// ambiguous one.
func bearerToken(w http.ResponseWriter, r *http.Request) (string, error) {
	var token string
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, ok := strings.Cut(h, " ")
		rest = strings.TrimSpace(rest)
		if !ok || !strings.EqualFold(scheme, "Bearer") || rest == "" {
			return "", errInvalidRequest("malformed Authorization header")
		}
		token = rest
	}
	if r.Method != http.MethodPost {
		return token, nil
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return token, nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return "", errInvalidRequest("the form could not be parsed")
	}
	vs := r.PostForm["access_token"]
	switch {
	case len(vs) == 0:
		return token, nil
	case len(vs) > 1 || token != "":
		// RFC 6750 2: a client must not use more than one method.
		return "", errInvalidRequest("the access token is sent more than once")
	}
	return vs[0], nil
}

func bearerChallenge(w http.ResponseWriter, code, desc string, status int) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="dromos-demo", error="`+code+`", error_description="`+desc+`"`)
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}
