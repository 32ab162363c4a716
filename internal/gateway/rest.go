package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dromos-dev/dromos/api"
	"github.com/dromos-dev/dromos/internal/gateway/brokerclient"
	"github.com/dromos-dev/dromos/internal/httpapi"
)

// maxRequestBody is the limit on a request-connection body.
const maxRequestBody = 64 << 10

// routes builds the REST mux. Every path the API knows also has a
// method-less pattern that answers 405 in the envelope, and "/" answers 404,
// so that no plain-text answer from ServeMux reaches an agent. Routes that
// take a connection id capture the whole rest of the path, so that an id
// with an encoded slash or an extra segment reaches the id check and is
// refused there with 400 rather than falling through to another route.
func (g *Gateway) routes() http.Handler {
	mux := http.NewServeMux()
	// allowed collects each path's methods, so that the 405 of a path
	// served for several methods names them all.
	allowed := map[string][]string{}
	var paths []string
	route := func(method, path string, h http.Handler) {
		mux.Handle(method+" "+path, h)
		if allowed[path] == nil {
			paths = append(paths, path)
		}
		allowed[path] = append(allowed[path], method)
	}
	route(http.MethodPost, "/v1/request-connection", g.authed(g.requestConnection))
	route(http.MethodGet, "/v1/providers", g.authed(g.providers))
	route(http.MethodPost, "/v1/confirm-connection", g.authed(g.confirmConnection))
	for _, r := range []struct {
		method, prefix string
		h              func(http.ResponseWriter, *http.Request, Caller)
	}{
		{http.MethodGet, "/v1/check-connection", g.checkConnection},
		{http.MethodGet, "/v1/token", g.token},
		{http.MethodPost, "/v1/refresh", g.refresh},
		{http.MethodDelete, "/v1/connections", g.deleteConnection},
	} {
		route(r.method, r.prefix, g.authed(r.h))
		route(r.method, r.prefix+"/{connection_id...}", g.authed(r.h))
	}
	route(http.MethodGet, "/v1/connections", g.authed(g.listConnections))
	route(http.MethodGet, "/v1/connections/{connection_id...}", g.authed(g.getConnection))
	g.webhookRoutes(route)
	// The API proxy takes every method; the rest of the path is the
	// provider's (proxy.go).
	route(http.MethodGet, "/v1/proxy-bases/{connection_id...}", g.authed(g.proxyBases))
	mux.Handle(proxyPrefix+"{connection_id}", g.authed(g.proxyCall))
	mux.Handle(proxyPrefix+"{connection_id}/{path...}", g.authed(g.proxyCall))
	route(http.MethodGet, "/health", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	route(http.MethodGet, "/metrics", promhttp.HandlerFor(g.gatherer, promhttp.HandlerOpts{}))
	route(http.MethodGet, "/openapi.yaml", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write([]byte(api.OpenAPI()))
	}))
	for _, p := range paths {
		mux.Handle(p, methodNotAllowed(g, allowed[p]...))
	}
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.writeError(w, r, httpapi.NoSuchEndpoint(r))
	}))
	return httpapi.Middleware(mux, g.log, g.now, g.metrics.observeHTTP)
}

func methodNotAllowed(g *Gateway, methods ...string) http.Handler {
	var list []string
	for _, m := range methods {
		list = append(list, m)
		if m == http.MethodGet {
			list = append(list, http.MethodHead)
		}
	}
	allow := strings.Join(list, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		g.writeError(w, r, &httpapi.Error{Status: http.StatusMethodNotAllowed, Code: httpapi.CodeMethod, Message: "method not allowed; use " + allow})
	})
}

// writeError sends err in the envelope; a 401 also names the scheme.
func (g *Gateway) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if e, ok := httpapi.As(err); ok && e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dromos-gateway"`)
	}
	httpapi.WriteError(w, r, g.log, err)
}

// authed runs h for an authenticated caller and answers 401 otherwise.
func (g *Gateway) authed(h func(http.ResponseWriter, *http.Request, Caller)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := g.auth.authenticate(r.Header.Values("Authorization"), r.Header.Values("X-API-Key"))
		if err == nil {
			err = g.admit(c, r.RemoteAddr)
		}
		if err != nil {
			g.writeError(w, r, err)
			return
		}
		h(w, r, c)
	})
}

// requestConnectionBody is the frozen request-connection input.
type requestConnectionBody struct {
	UserID       string   `json:"user_id"`
	ProviderName string   `json:"provider_name"`
	Scopes       []string `json:"scopes"`
	ReturnURL    string   `json:"return_url"`
	// Metadata takes any JSON value per key.
	Metadata map[string]json.RawMessage `json:"metadata"`
	// ConnectionID is additive: it reconnects an existing connection, or
	// steps up an active one.
	ConnectionID string `json:"connection_id"`
	// MCPServerURL and Grant are additive: a connection to an MCP server
	// by its URL instead of provider_name.
	MCPServerURL string `json:"mcp_server_url"`
	Grant        string `json:"grant"`
	// Credentials is additive: the key or user/password pair of an
	// api_key or basic provider. Never logged.
	Credentials map[string]string `json:"credentials"`
	// ConfirmURL and RequireConfirmation are additive: user confirmation.
	ConfirmURL          string `json:"confirm_url"`
	RequireConfirmation bool   `json:"require_confirmation"`
	// ExpectedIdentity is additive: who should consent.
	ExpectedIdentity *brokerclient.ExpectedIdentity `json:"expected_identity"`
}

// requestConnectionAnswer is the frozen request-connection output; authUrl
// is camelCase by contract.
type requestConnectionAnswer struct {
	AuthURL      string   `json:"authUrl"`
	ConnectionID string   `json:"connection_id"`
	State        string   `json:"state"`
	Scopes       []string `json:"scopes"`
	ProviderID   string   `json:"provider_id"`
	// Status and StatusReason are additive: set when the connection
	// needed no consent (a submitted key, client credentials).
	Status       string `json:"status,omitempty"`
	StatusReason string `json:"status_reason,omitempty"`
	// The device flow's fields are additive: set instead of authUrl for
	// an oauth2_device_code provider (RFC 8628 §3.2, device code left
	// out).
	VerificationURI         string `json:"verification_uri,omitempty"`
	VerificationURIComplete string `json:"verification_uri_complete,omitempty"`
	UserCode                string `json:"user_code,omitempty"`
	ExpiresIn               int64  `json:"expires_in,omitempty"`
	Interval                int64  `json:"interval,omitempty"`
}

func (g *Gateway) requestConnection(w http.ResponseWriter, r *http.Request, c Caller) {
	if err := g.admitConsent(c, r.RemoteAddr); err != nil {
		g.writeError(w, r, err)
		return
	}
	var in requestConnectionBody
	if err := httpapi.DecodeJSON(w, r, &in, maxRequestBody); err != nil {
		g.writeError(w, r, asBadInput(err))
		return
	}
	out, err := g.svc.RequestConnection(r.Context(), c, ConnectionRequest(in))
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, requestConnectionAnswer(out))
}

// asBadInput folds DecodeJSON's 413 and 415 into 400, the one status the
// frozen contract has for bad input; the code still says too_large.
func asBadInput(err error) error {
	e, ok := httpapi.As(err)
	if !ok || e.Status == http.StatusBadRequest {
		return err
	}
	c := *e
	c.Status = http.StatusBadRequest
	return &c
}

type checkConnectionAnswer struct {
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
	Reason string `json:"reason,omitempty"`
	// ProviderData is additive to the v1 contract.
	ProviderData map[string]string `json:"provider_data,omitempty"`
	// Metadata is additive: the request's metadata, as given.
	Metadata map[string]json.RawMessage `json:"metadata,omitempty"`
	// StepUp is additive too: the latest step-up, when there was one.
	StepUp *StepUpStatus `json:"step_up,omitempty"`
}

func (g *Gateway) checkConnection(w http.ResponseWriter, r *http.Request, c Caller) {
	out, err := g.svc.CheckConnection(r.Context(), c, r.PathValue("connection_id"))
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, checkConnectionAnswer(out))
}

func (g *Gateway) token(w http.ResponseWriter, r *http.Request, c Caller) {
	t, err := g.svc.Token(r.Context(), c, r.PathValue("connection_id"))
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	httpapi.WriteJSONObject(w, http.StatusOK, tokenBody(t))
}

func (g *Gateway) refresh(w http.ResponseWriter, r *http.Request, c Caller) {
	t, err := g.svc.Refresh(r.Context(), c, r.PathValue("connection_id"))
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	httpapi.WriteJSONObject(w, http.StatusOK, tokenBody(t))
}

// tokenBody is the broker's token answer again: the named members, then
// the provider's extras beside them (never over them).
func (g *Gateway) deleteConnection(w http.ResponseWriter, r *http.Request, c Caller) {
	if err := g.svc.DeleteConnection(r.Context(), c, r.PathValue("connection_id")); err != nil {
		g.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func tokenBody(t brokerclient.Token) map[string]any {
	out := make(map[string]any, len(t.Extras)+7)
	for k, v := range t.Extras {
		out[k] = json.RawMessage(v)
	}
	out["access_token"] = t.AccessToken
	out["token_type"] = t.TokenType
	out["scope"] = t.Scope
	out["provider"] = t.Provider
	if t.ExpiresIn != 0 || !t.ExpiresAt.IsZero() {
		out["expires_in"] = t.ExpiresIn
	}
	if !t.ExpiresAt.IsZero() {
		out["expires_at"] = t.ExpiresAt.UTC().Format(time.RFC3339)
	}
	if t.IDToken != "" {
		out["id_token"] = t.IDToken
	}
	return out
}

type providerAnswer struct {
	Name        string   `json:"name"`
	DisplayName string   `json:"display_name"`
	Scopes      []string `json:"scopes"`
}

func (g *Gateway) providers(w http.ResponseWriter, r *http.Request, _ Caller) {
	ps, err := g.svc.Providers(r.Context())
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	out := make([]providerAnswer, len(ps))
	for i, p := range ps {
		out[i] = providerAnswer(p)
	}
	body := map[string]any{"providers": out}
	switch r.URL.Query().Get("include") {
	case "":
	case "catalog":
		items, err := g.svc.Catalog(r.Context())
		if err != nil {
			g.writeError(w, r, err)
			return
		}
		cat := make([]catalogAnswer, len(items))
		for i, it := range items {
			cat[i] = catalogAnswer(it)
			if cat[i].TemplateParams == nil {
				cat[i].TemplateParams = []string{}
			}
		}
		body["catalog"] = cat
	default:
		g.writeError(w, r, httpapi.BadRequest("include must be catalog"))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, body)
}

// catalogAnswer is a provider template in GET /v1/providers?include=catalog.
type catalogAnswer struct {
	Name           string   `json:"name"`
	DisplayName    string   `json:"display_name"`
	DocsURL        string   `json:"docs_url"`
	TemplateParams []string `json:"template_params"`
	Configured     bool     `json:"configured"`
}
