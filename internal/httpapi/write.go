package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
)

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// WriteError maps err to the envelope. An *Error is sent as it is (its
// Cause only logged); anything else becomes a generic 500 whose detail goes
// to the log only, never to the client.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e, ok := As(err)
	if !ok {
		log.ErrorContext(r.Context(), "internal error", "method", r.Method, "route", r.Pattern, "err", err)
		e = &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}
	} else if e.Cause != nil {
		level := slog.LevelInfo
		if e.Status >= 500 {
			level = slog.LevelWarn
		}
		log.Log(r.Context(), level, "request failed", "route", r.Pattern, "status", e.Status, "error_code", e.Code, "err", e.Cause)
	}
	setRetryAfter(w.Header(), e.RetryAfter)
	if len(e.Extra) == 0 {
		WriteJSON(w, e.Status, Envelope{Code: e.Code, Message: e.Message})
		return
	}
	body := make(map[string]any, len(e.Extra)+2)
	for k, v := range e.Extra {
		body[k] = v
	}
	body["code"], body["message"] = e.Code, e.Message
	WriteJSON(w, e.Status, body)
}
