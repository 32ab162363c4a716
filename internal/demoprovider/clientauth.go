package demoprovider

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// parseClientForm reads a form-encoded POST body (token and revocation
// endpoints). Query parameters are ignored: credentials in a URL end up in
// logs.
func parseClientForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errInvalidRequest("the body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, errInvalidRequest("the form could not be parsed")
	}
	for name, vs := range r.PostForm {
		if len(vs) > 1 {
			return nil, errInvalidRequest(repeatedParam(name))
		}
	}
	return r.PostForm, nil
}

// authenticateClient accepts client_secret_basic or client_secret_post, but
// not both at once (RFC 6749 2.3).
func (p *Provider) authenticateClient(r *http.Request, form url.Values) error {
	header := r.Header.Get("Authorization")
	postSecret := form.Has("client_secret")
	var id, secret string
	switch {
	case header != "" && postSecret:
		return errInvalidRequest("use one client authentication method")
	case header != "":
		var ok bool
		id, secret, ok = parseBasic(header)
		if !ok {
			return errInvalidClient(true)
		}
		// client_id may be repeated in the body, but must then agree.
		if form.Has("client_id") && form.Get("client_id") != id {
			return errInvalidRequest("client_id does not match the authenticated client")
		}
	case postSecret:
		id, secret = form.Get("client_id"), form.Get("client_secret")
	default:
		return errInvalidClient(true)
	}
	if !p.clientMatches(id, secret) {
		return errInvalidClient(header != "")
	}
	return nil
}

// clientMatches compares digests in constant time, and always both of
// them, so neither the secret's content nor its length nor which half was
// wrong shows in the timing.
func (p *Provider) clientMatches(id, secret string) bool {
	wantID := sha256.Sum256([]byte(p.clientID))
	gotID := sha256.Sum256([]byte(id))
	gotSecret := sha256.Sum256([]byte(secret))
	idOK := subtle.ConstantTimeCompare(wantID[:], gotID[:])
	secretOK := subtle.ConstantTimeCompare(p.secretDigest[:], gotSecret[:])
	return idOK&secretOK == 1
}

// parseBasic decodes "Basic base64(urlencode(id):urlencode(secret))"; both
// halves are form-urlencoded before encoding (RFC 6749 2.3.1).
func parseBasic(header string) (id, secret string, ok bool) {
	scheme, rest, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return "", "", false
	}
	encID, encSecret, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", false
	}
	if id, err = url.QueryUnescape(encID); err != nil {
		return "", "", false
	}
	if secret, err = url.QueryUnescape(encSecret); err != nil {
		return "", "", false
	}
	if id == "" {
		return "", "", false
	}
	return id, secret, true
}
