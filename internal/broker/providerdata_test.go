package broker_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/metadata"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
	"github.com/dromos-dev/dromos/internal/storage"
)

// resourceServer answers a resource lookup like Atlassian's
// accessible-resources endpoint: only for the bearer token it expects.
type resourceServer struct {
	srv    *httptest.Server
	calls  atomic.Int64
	status atomic.Int64
}

func newResourceServer(t *testing.T, path, wantToken string, answer []map[string]any) *resourceServer {
	rs := &resourceServer{}
	rs.status.Store(http.StatusOK)
	rs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.calls.Add(1)
		if r.Method != http.MethodGet || r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+wantToken {
			http.Error(w, `{"code":401,"message":"Unauthorized"}`, http.StatusUnauthorized)
			return
		}
		if st := int(rs.status.Load()); st != http.StatusOK {
			http.Error(w, "down", st)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer)
	}))
	t.Cleanup(rs.srv.Close)
	return rs
}

// connectViaGateway asks the gateway for a connection, walks the browser
// through the broker's start URL and delivers the provider's callback.
func connectViaGateway(t *testing.T, s *stack, providerName string, metadata map[string]string, extra url.Values) string {
	t.Helper()
	var grant map[string]any
	body := map[string]any{"user_id": "u", "provider_name": providerName, "scopes": []string{"read:jira-work"}, "return_url": s.retURL}
	if metadata != nil {
		body["metadata"] = metadata
	}
	if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, body, &grant); st != 200 {
		t.Fatalf("request-connection %d %v", st, grant)
	}
	s.h.visitStart(grant["authUrl"].(string))
	q := url.Values{"state": {grant["state"].(string)}, "code": {"c"}}
	for k, v := range extra {
		q[k] = v
	}
	if resp := s.h.callback(q); resp.StatusCode != http.StatusFound {
		t.Fatalf("callback %d", resp.StatusCode)
	}
	return grant["connection_id"].(string)
}

type checkAnswer struct {
	Status       string            `json:"status"`
	Detail       string            `json:"detail"`
	ProviderData map[string]string `json:"provider_data"`
}

// The atlassian template's resource lookup runs after the exchange, and
// agents read the cloud id from check-connection; their own metadata stays
// apart from it.
func TestAtlassianCloudIDThroughGateway(t *testing.T) {
	s := newStack(t, sqliteURL(t))
	p := newFakeProvider(t)
	// Atlassian's token endpoint is documented with JSON bodies, which the
	// template sends (json_token_request).
	p.setResponse(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&body) != nil {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "fake-access-" + body["code"], "token_type": "Bearer",
			"expires_in": 3600, "refresh_token": "fake-refresh", "scope": "read:jira-work"})
	})
	res := newResourceServer(t, "/oauth/token/accessible-resources", "fake-access-c", []map[string]any{
		{"id": "1324a887-45db-1bf4-1e99-ef0ff456d421", "name": "Acme", "url": "https://acme.atlassian.net",
			"scopes": []string{"read:jira-work"}, "avatarUrl": "https://example.com/a.png"},
		{"id": "5b1c0f3e-0000-4000-8000-000000000002", "name": "Acme Labs", "url": "https://acme-labs.atlassian.net"},
	})
	var prov map[string]any
	if st := s.h.do("POST", "/providers", map[string]any{"profile": map[string]any{
		"template": "atlassian", "auth_url": p.srv.URL + "/authorize", "token_url": p.srv.URL + "/token",
		"resources_url": res.srv.URL + "/oauth/token/accessible-resources", "client_id": "c", "client_secret": "s",
	}}, &prov); st != 201 {
		t.Fatalf("register: %d %v", st, prov)
	}

	id := connectViaGateway(t, s, "atlassian", map[string]string{"team": "red"}, nil)
	var chk checkAnswer
	if st := s.rest(t, "GET", "/v1/check-connection/"+id, "/v1/check-connection/{connection_id}", agentKey, nil, &chk); st != 200 || chk.Status != "active" {
		t.Fatalf("check-connection %d %+v", st, chk)
	}
	want := map[string]string{
		"cloud_id":  "1324a887-45db-1bf4-1e99-ef0ff456d421",
		"cloud_ids": "1324a887-45db-1bf4-1e99-ef0ff456d421,5b1c0f3e-0000-4000-8000-000000000002",
		"site_url":  "https://acme.atlassian.net",
	}
	for k, v := range want {
		if chk.ProviderData[k] != v {
			t.Errorf("provider_data[%s] = %q, want %q (all: %v)", k, chk.ProviderData[k], v, chk.ProviderData)
		}
	}
	if len(chk.ProviderData) != len(want) {
		t.Errorf("provider_data has extra entries: %v", chk.ProviderData)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+agentKey)
	gst, err := s.grpc.CheckConnection(ctx, &dromosv1.CheckConnectionRequest{ConnectionId: id})
	if err != nil || !maps.Equal(gst.GetProviderData(), want) {
		t.Fatalf("gRPC check-connection: %v, provider_data %v", err, gst.GetProviderData())
	}
	var view struct {
		Metadata     map[string]string `json:"metadata"`
		ProviderData map[string]string `json:"provider_data"`
	}
	if st := s.h.do("GET", "/connections/"+id, nil, &view); st != 200 || len(view.Metadata) != 1 || view.Metadata["team"] != "red" ||
		view.ProviderData["cloud_id"] != want["cloud_id"] {
		t.Fatalf("broker view %d %+v", st, view)
	}
	if n := res.calls.Load(); n != 1 {
		t.Fatalf("resource lookups: %d, want 1", n)
	}

	// The lookup failing leaves a working connection without resource ids.
	res.status.Store(http.StatusBadGateway)
	id2 := connectViaGateway(t, s, "atlassian", nil, nil)
	chk = checkAnswer{}
	if st := s.rest(t, "GET", "/v1/check-connection/"+id2, "/v1/check-connection/{connection_id}", agentKey, nil, &chk); st != 200 ||
		chk.Status != "active" || len(chk.ProviderData) != 0 {
		t.Fatalf("check-connection after a failed lookup %d %+v", st, chk)
	}
	var tok map[string]any
	if st := s.rest(t, "GET", "/v1/token/"+id2, "/v1/token/{connection_id}", agentKey, nil, &tok); st != 200 || tok["access_token"] != "fake-access-c" {
		t.Fatalf("token after a failed lookup %d", st)
	}
	if !strings.Contains(s.h.logs.String(), "resource lookup failed") || strings.Contains(s.h.logs.String(), "fake-access-c") {
		t.Fatal("a failed lookup must be logged, without the token")
	}

	// Agents cannot write provider data through their own metadata.
	var env envelope
	if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
		"user_id": "u", "provider_name": "atlassian", "scopes": []string{"read:jira-work"}, "return_url": s.retURL,
		"metadata": map[string]string{"provider.cloud_id": "forged"}}, &env); st != 400 || env.Code != "bad_request" ||
		!strings.Contains(env.Message, "provider.") {
		t.Fatalf("reserved metadata key: %d %+v", st, env)
	}
	// Nor through the keys older releases kept provider data under.
	if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
		"user_id": "u", "provider_name": "atlassian", "scopes": []string{"read:jira-work"}, "return_url": s.retURL,
		"metadata": map[string]string{"callback.realmId": "forged"}}, &env); st != 400 || env.Code != "bad_request" {
		t.Fatalf("legacy reserved metadata key: %d %+v", st, env)
	}
}

// Values handed over on the callback (QuickBooks realmId) and in the token
// response (Salesforce instance_url) are kept as provider data; a token
// response member of the wrong shape fails the connection before any token
// is stored.
func TestProviderDataFromCallbackAndTokenResponse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL)
		p := newFakeProvider(t)
		h.registerProvider(map[string]any{"template": "quickbooks", "auth_url": p.srv.URL + "/authorize",
			"token_url": p.srv.URL + "/token", "client_id": "c", "client_secret": "s"})
		c := h.consent("quickbooks", []string{"com.intuit.quickbooks.accounting"}, "https://app.example.com/back")
		if resp := h.callback(url.Values{"state": {c.State}, "code": {"x"}, "realmId": {"4620816365178608920"}}); resp.StatusCode != http.StatusFound {
			t.Fatalf("callback %d", resp.StatusCode)
		}
		var view struct {
			Status       string            `json:"status"`
			Metadata     map[string]string `json:"metadata"`
			ProviderData map[string]string `json:"provider_data"`
		}
		if st := h.do("GET", "/connections/"+c.ConnectionID, nil, &view); st != 200 || view.Status != "active" ||
			view.ProviderData["realmId"] != "4620816365178608920" || len(view.Metadata) != 0 {
			t.Fatalf("quickbooks connection %d %+v", st, view)
		}

		sf := newFakeProvider(t)
		answer := func(instance string) func(w http.ResponseWriter, r *http.Request) {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "00D-access", "token_type": "Bearer",
					"refresh_token": "sf-refresh", "instance_url": instance, "id": "https://login.salesforce.com/id/00D/005",
					"issued_at": "1700000000000", "signature": "c2ln"})
			}
		}
		instance := "https://acme.my.salesforce.com"
		sf.setResponse(answer(instance))
		h.registerProvider(map[string]any{"name": "sf", "auth_url": sf.srv.URL + "/authorize", "token_url": sf.srv.URL + "/token",
			"client_id": "c", "client_secret": "s", "quirks": []string{"token_instance_url"}})
		c = h.consent("sf", []string{"api"}, "https://app.example.com/back")
		h.callback(url.Values{"state": {c.State}, "code": {"x"}})
		view.ProviderData = nil
		if st := h.do("GET", "/connections/"+c.ConnectionID, nil, &view); st != 200 || view.Status != "active" ||
			view.ProviderData["instance_url"] != instance || len(view.ProviderData) != 1 {
			t.Fatalf("salesforce-like connection %d %+v", st, view)
		}

		sf.setResponse(answer("javascript:alert(1)"))
		c = h.consent("sf", []string{"api"}, "https://app.example.com/back")
		resp := h.callback(url.Values{"state": {c.State}, "code": {"x"}})
		if loc := resp.Header.Get("Location"); !strings.Contains(loc, "error=exchange_failed") {
			t.Fatalf("bad instance_url: redirect %q", loc)
		}
		h.assertNoToken(c.ConnectionID)
	})
}

// A Xero-shaped connections answer: the tenant id, not the connection id,
// is what API calls need in xero-tenant-id.
func TestXeroTenantsLookup(t *testing.T) {
	h := newHarness(t, sqliteURL(t))
	p := newFakeProvider(t)
	res := newResourceServer(t, "/connections", "fake-access-x", []map[string]any{
		{"id": "e1eede29-f875-4a5d-8470-17f6a29a88b1", "authEventId": "d99ecdfe-391d-43d2-b834-17636ba90e8d",
			"tenantId": "70784a63-d24b-46a9-a4db-0e70a274b056", "tenantType": "ORGANISATION", "tenantName": "Maple Florist",
			"createdDateUtc": "2019-07-09T23:40:30.1833130", "updatedDateUtc": "2020-05-15T01:35:13.8491980"},
	})
	h.registerProvider(map[string]any{"name": "xero-test", "auth_url": p.srv.URL + "/authorize", "token_url": p.srv.URL + "/token",
		"resources_url": res.srv.URL + "/connections", "client_id": "c", "client_secret": "s", "quirks": []string{"xero_tenants"}})
	c := h.consent("xero-test", []string{"accounting.transactions"}, "https://app.example.com/back")
	if resp := h.callback(url.Values{"state": {c.State}, "code": {"x"}}); resp.StatusCode != http.StatusFound {
		t.Fatalf("callback %d", resp.StatusCode)
	}
	var view struct {
		Status       string            `json:"status"`
		ProviderData map[string]string `json:"provider_data"`
	}
	want := map[string]string{"tenant_id": "70784a63-d24b-46a9-a4db-0e70a274b056",
		"tenant_ids": "70784a63-d24b-46a9-a4db-0e70a274b056", "tenant_name": "Maple Florist"}
	if st := h.do("GET", "/connections/"+c.ConnectionID, nil, &view); st != 200 || view.Status != "active" || !maps.Equal(view.ProviderData, want) {
		t.Fatalf("xero connection %d %+v", st, view)
	}
}

// Xero lists every organisation the user connected to the app, the one
// of this consent not necessarily first: tenant_id is the connection whose
// authEventId is the access token's authentication_event_id.
func TestXeroTenantOfThisConsent(t *testing.T) {
	h := newHarness(t, sqliteURL(t))
	p := newFakeProvider(t)
	claims, _ := json.Marshal(map[string]any{"authentication_event_id": "ev-new", "xero_userid": "u1", "exp": 4102444800})
	access := "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(claims) + ".c2ln"
	p.setResponse(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": 1800, "refresh_token": "r"})
	})
	res := newResourceServer(t, "/connections", access, []map[string]any{
		{"id": "c-old", "authEventId": "ev-old", "tenantId": "11111111-1111-4111-8111-111111111111", "tenantName": "Old Org"},
		{"id": "c-new", "authEventId": "ev-new", "tenantId": "22222222-2222-4222-8222-222222222222", "tenantName": "New Org"},
	})
	h.registerProvider(map[string]any{"name": "xero-test", "auth_url": p.srv.URL + "/authorize", "token_url": p.srv.URL + "/token",
		"resources_url": res.srv.URL + "/connections", "client_id": "c", "client_secret": "s", "quirks": []string{"xero_tenants"}})
	c := h.consent("xero-test", []string{"accounting.transactions"}, "https://app.example.com/back")
	h.callback(url.Values{"state": {c.State}, "code": {"x"}})
	var view struct {
		ProviderData map[string]string `json:"provider_data"`
	}
	want := map[string]string{"tenant_id": "22222222-2222-4222-8222-222222222222",
		"tenant_ids": "11111111-1111-4111-8111-111111111111,22222222-2222-4222-8222-222222222222", "tenant_name": "New Org"}
	if st := h.do("GET", "/connections/"+c.ConnectionID, nil, &view); st != 200 || !maps.Equal(view.ProviderData, want) {
		t.Fatalf("xero connection %d %+v", st, view.ProviderData)
	}
}

// Connections stored before provider data had its prefix kept QuickBooks'
// realmId as "callback.realmId"; they still show it as provider data, and a
// reconnect's callback replaces it.
func TestLegacyCallbackKeysAreProviderData(t *testing.T) {
	h := newHarness(t, sqliteURL(t))
	p := newFakeProvider(t)
	h.registerProvider(map[string]any{"template": "quickbooks", "auth_url": p.srv.URL + "/authorize",
		"token_url": p.srv.URL + "/token", "client_id": "c", "client_secret": "s"})
	c := h.consent("quickbooks", []string{"com.intuit.quickbooks.accounting"}, "https://app.example.com/back")
	if _, err := h.store.UpdateConnection(context.Background(), c.ConnectionID, func(conn storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		conn.Metadata = map[string]json.RawMessage{"callback.realmId": json.RawMessage(`"111"`), "team": json.RawMessage(`"red"`)}
		return conn, storage.TokenChange{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	var view struct {
		Metadata     map[string]string `json:"metadata"`
		ProviderData map[string]string `json:"provider_data"`
	}
	if h.do("GET", "/connections/"+c.ConnectionID, nil, &view); view.ProviderData["realmId"] != "111" || len(view.Metadata) != 1 {
		t.Fatalf("legacy key: %+v", view)
	}
	h.callback(url.Values{"state": {c.State}, "code": {"x"}, "realmId": {"222"}})
	view.ProviderData, view.Metadata = nil, nil
	if h.do("GET", "/connections/"+c.ConnectionID, nil, &view); !maps.Equal(view.ProviderData, map[string]string{"realmId": "222"}) ||
		!maps.Equal(view.Metadata, map[string]string{"team": "red"}) {
		t.Fatalf("after the callback: %+v", view)
	}
}
