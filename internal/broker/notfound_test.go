package broker_test

import (
	"net/http"
	"testing"
)

// The broker words its 404 for an unknown route exactly as the gateway
// does (internal/gateway TestUnknownRouteWording), in the error envelope.
func TestUnknownRouteWording(t *testing.T) {
	h := newHarness(t, sqliteURL(t))
	for path, want := range map[string]string{
		"/nope":              "no such endpoint: GET /nope",
		"/providers/x/y/z":   "no such endpoint: GET /providers/x/y/z",
		"/evil%1b%5b2J/path": "no such endpoint: GET /evil%1b%5b2J/path",
	} {
		var env envelope
		if st := h.do(http.MethodGet, path, nil, &env); st != http.StatusNotFound || env.Code != "not_found" || env.Message != want {
			t.Errorf("GET %s: %d %+v, want 404 not_found %q", path, st, env, want)
		}
	}
}
