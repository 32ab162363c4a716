package demoprovider

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
)

// oauthError is a protocol error with an RFC 6749 error code. Its
// description is sent to the client, so it never contains a secret or
// anything taken from the request.
type oauthError struct {
	code        string
	description string
	// status defaults to 400.
	status int
	// basicChallenge asks for a WWW-Authenticate: Basic header, which
	// RFC 6749 5.2 requires when client authentication via the
	// Authorization header failed.
	basicChallenge bool
}

func (e *oauthError) Error() string { return e.code + ": " + e.description }

func errInvalidRequest(desc string) *oauthError {
	return &oauthError{code: "invalid_request", description: desc}
}

func errInvalidGrant(desc string) *oauthError {
	return &oauthError{code: "invalid_grant", description: desc}
}

func errInvalidClient(basic bool) *oauthError {
	return &oauthError{
		code:           "invalid_client",
		description:    "client authentication failed",
		status:         http.StatusUnauthorized,
		basicChallenge: basic,
	}
}

// noStore marks a response that carries or concerns credentials as
// uncacheable (RFC 6749 5.1).
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	writeJSONBytes(w, status, append(b, '\n'))
}

// writeOAuthError writes err as an RFC 6749 5.2 JSON error. Anything that
// is not an *oauthError is a server fault: logged, and answered with a bare
// server_error.
func (p *Provider) writeOAuthError(w http.ResponseWriter, r *http.Request, err error) {
	noStore(w)
	var oe *oauthError
	if !errors.As(err, &oe) {
		p.log.ErrorContext(r.Context(), "demo provider: internal error", slog.String("path", r.URL.Path), slog.Any("error", err))
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	status := oe.status
	if status == 0 {
		status = http.StatusBadRequest
	}
	if oe.basicChallenge {
		w.Header().Set("WWW-Authenticate", `Basic realm="dromos-demo", charset="UTF-8"`)
	}
	body := map[string]string{"error": oe.code}
	if oe.description != "" {
		body["error_description"] = oe.description
	}
	writeJSON(w, status, body)
}
