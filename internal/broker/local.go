package broker

import (
	"context"
	"net/http"
	"net/url"

	"github.com/dromos-dev/dromos/internal/httpapi"
)

// A gateway in the broker's own process (dromos serve) calls the broker
// through these instead of over the network: token reads and refreshes, the
// hot path, as Go values (no socket, no JSON), every other call through
// InProcessHandler in memory. internal/localbroker adapts them to the
// gateway's Broker interface.

// inProcessKey marks a request's context as made in process.
type inProcessKey struct{}

// markInProcess is the in-process handler's stand-in for guard: no
// network guard applies, and handlers can tell the call came from within.
func markInProcess(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), inProcessKey{}, true)))
	})
}

// inProcess reports whether r came from a gateway in this process.
func inProcess(r *http.Request) bool {
	v, _ := r.Context().Value(inProcessKey{}).(bool)
	return v
}

// InProcessHandler is the broker's HTTP API for a gateway in the same
// process: Handler's routes without the network guards (API key, address
// allowlist), which protect a listener, not calls within the process. It
// MUST NOT be served on a listener.
func (b *Broker) InProcessHandler() http.Handler { return b.inProcess }

// TokenMembers reads a connection's token for the named client as GET
// /connections/{id}/token?client_name= does for the gateway (refreshing it
// first when due), and returns the members that answer holds, unencoded.
// Errors are those the HTTP API would write, storage outages mapped to 503.
// idToken asks for the id_token as ?id_token=true does (the operator's
// EXPOSE_ID_TOKEN applies either way).
func (b *Broker) TokenMembers(ctx context.Context, id, clientName string, idToken bool) (map[string]any, error) {
	r, q := inProcessRequest(ctx, http.MethodGet, id, clientName)
	withIDToken := idToken || b.cfg.ExposeIDToken
	c, set, err := b.readToken(r, q, true, withIDToken)
	if err != nil {
		return nil, b.mapStorageErr(err)
	}
	return b.tokenBody(c, set, withIDToken), nil
}

// RefreshMembers is TokenMembers for POST /connections/{id}/refresh: a
// refresh at the provider, whether due or not.
func (b *Broker) RefreshMembers(ctx context.Context, id, clientName string, idToken bool) (map[string]any, error) {
	r, _ := inProcessRequest(ctx, http.MethodPost, id, clientName)
	c, set, err := b.forceRefresh(r)
	if err != nil {
		return nil, b.mapStorageErr(err)
	}
	return b.tokenBody(c, set, idToken || b.cfg.ExposeIDToken), nil
}

// Shared header values of in-process requests; never modified.
var (
	inProcessGateway   = []string{"1"}
	inProcessUserAgent = []string{"dromos-gateway (in-process)"}
)

// inProcessRequest is the request a gateway call for connection id would
// be, as the handlers' cores read it: the path's id, the owner in the
// query, the gateway mark; no peer address (audit rows get none).
func inProcessRequest(ctx context.Context, method, id, clientName string) (*http.Request, url.Values) {
	q := url.Values{}
	u := &url.URL{Path: "/connections/" + id}
	if clientName != "" {
		q["client_name"] = []string{clientName}
		u.RawQuery = "client_name=" + url.QueryEscape(clientName)
	}
	r := (&http.Request{Method: method, URL: u, Header: http.Header{
		httpapi.GatewayHeader: inProcessGateway,
		"User-Agent":          inProcessUserAgent,
	}}).WithContext(context.WithValue(ctx, inProcessKey{}, true))
	r.SetPathValue("id", id)
	return r, q
}
