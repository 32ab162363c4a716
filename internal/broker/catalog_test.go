package broker_test

import (
	"net/url"
	"testing"
)

// Templates are registered with explicit endpoint fields pointing at
// loopback fakes: explicit fields override the template, which is the
// documented way to aim a template at a test provider.

func TestTemplateWithDiscoveryThroughGateway(t *testing.T) {
	s := newStack(t, sqliteURL(t))
	var prov map[string]any
	st := s.h.do("POST", "/providers", map[string]any{"profile": map[string]any{
		"template": "okta", "template_params": map[string]string{"domain": "acme.okta.com"},
		"name": "okta-e2e", "issuer": s.op.Issuer, "client_id": s.op.ClientID, "client_secret": s.op.ClientSecret,
	}}, &prov)
	if st != 201 || prov["template"] != "okta" || prov["enable_discovery"] != true || prov["token_endpoint_auth_method"] != "client_secret_basic" {
		t.Fatalf("template registration: %d %v", st, prov)
	}
	var grant map[string]any
	if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
		"user_id": "u", "provider_name": "okta-e2e", "scopes": []string{"openid", "email"}, "return_url": s.retURL}, &grant); st != 200 {
		t.Fatalf("request %d %v", st, grant)
	}
	if q := s.consentAtOP(t, grant["authUrl"].(string)); q.Get("status") != "success" {
		t.Fatalf("consent %v", q)
	}
	var tok map[string]any
	if st := s.rest(t, "GET", "/v1/token/"+grant["connection_id"].(string), "/v1/token/{connection_id}", agentKey, nil, &tok); st != 200 || tok["id_token"] == nil {
		t.Fatalf("token %d %v", st, tok)
	}
}

func TestStaticTemplateThroughGateway(t *testing.T) {
	s := newStack(t, sqliteURL(t))
	h := s.h
	p := newRotatingProvider(t)
	var prov map[string]any
	if st := h.do("POST", "/providers", map[string]any{"profile": map[string]any{
		"template": "github", "auth_url": p.srv.URL + "/authorize", "token_url": p.srv.URL + "/token",
		"client_id": "c", "client_secret": "s",
	}}, &prov); st != 201 || prov["name"] != "github" || prov["token_endpoint_auth_method"] != "client_secret_post" {
		t.Fatalf("template registration: %d %v", st, prov)
	}
	var grant map[string]any
	if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
		"user_id": "u", "provider_name": "GitHub", "scopes": []string{"repo"}, "return_url": s.retURL}, &grant); st != 200 {
		t.Fatalf("request %d %v", st, grant)
	}
	// The user's browser: the broker's start URL, then (the fake provider
	// having approved) the callback.
	providerURL := h.visitStart(grant["authUrl"].(string)).Header.Get("Location")
	au, _ := url.Parse(providerURL)
	if au.Host != mustHost(p.srv.URL) || au.Query().Get("scope") != "repo" {
		t.Fatalf("provider URL %s", providerURL)
	}
	if resp := h.callback(url.Values{"state": {grant["state"].(string)}, "code": {"c"}}); resp.StatusCode != 302 {
		t.Fatalf("callback %d", resp.StatusCode)
	}
	var tok map[string]any
	if st := s.rest(t, "GET", "/v1/token/"+grant["connection_id"].(string), "/v1/token/{connection_id}", agentKey, nil, &tok); st != 200 || tok["provider"] != "github" {
		t.Fatalf("token %d %v", st, tok)
	}
	// Agents see the catalog through the gateway, with what is configured.
	var list struct {
		Providers []map[string]any `json:"providers"`
		Catalog   []map[string]any `json:"catalog"`
	}
	if st := s.rest(t, "GET", "/v1/providers?include=catalog", "/v1/providers", agentKey, nil, &list); st != 200 || len(list.Catalog) < 30 {
		t.Fatalf("providers with catalog: %d, %d templates", st, len(list.Catalog))
	}
	for _, e := range list.Catalog {
		if (e["name"] == "github") != (e["configured"] == true) && (e["name"] == "github" || e["name"] == "slack") {
			t.Fatalf("configured flag wrong for %v", e)
		}
	}
	var env envelope
	if st := s.rest(t, "GET", "/v1/providers?include=everything", "/v1/providers", agentKey, nil, &env); st != 400 {
		t.Fatalf("bad include: %d", st)
	}
	if st := h.do("POST", "/providers", map[string]any{"profile": map[string]any{"template": "gitlub", "client_id": "c", "client_secret": "s"}}, &env); st != 400 {
		t.Fatalf("unknown template: %d %+v", st, env)
	}
}

func TestCatalogListing(t *testing.T) {
	h := newHarness(t, sqliteURL(t))
	p := newRotatingProvider(t)
	h.do("POST", "/providers", map[string]any{"profile": map[string]any{
		"template": "github", "auth_url": p.srv.URL + "/authorize", "token_url": p.srv.URL + "/token", "client_id": "c", "client_secret": "s"}}, nil)
	var out struct {
		Templates []struct {
			Name         string `json:"name"`
			Configured   bool   `json:"configured"`
			Placeholders []struct {
				Name string `json:"name"`
			} `json:"template_params"`
		} `json:"templates"`
	}
	if st := h.do("GET", "/catalog", nil, &out); st != 200 || len(out.Templates) < 30 {
		t.Fatalf("catalog %d with %d templates", st, len(out.Templates))
	}
	seen := map[string]bool{}
	for _, tpl := range out.Templates {
		seen[tpl.Name] = tpl.Configured
		if tpl.Name == "okta" && (len(tpl.Placeholders) != 1 || tpl.Placeholders[0].Name != "domain") {
			t.Fatalf("okta placeholders %+v", tpl.Placeholders)
		}
	}
	if !seen["github"] || seen["slack"] {
		t.Fatalf("configured flags wrong: github=%v slack=%v", seen["github"], seen["slack"])
	}
}
