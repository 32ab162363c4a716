package gateway_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/gateway"
)

func TestRESTFlow(t *testing.T) {
	h := newHarness(t)
	hdr := bearer(keyA)
	hdr["X-Request-Id"] = "flow-req-1"
	res := h.call("POST", "/v1/request-connection", "/v1/request-connection", hdr,
		`{"user_id":"u-42","provider_name":"Google","scopes":["openid","email"],"return_url":"https://app.example.com/done","metadata":{"k":"v"}}`)
	if res.status != http.StatusOK {
		t.Fatalf("request-connection: %d %s", res.status, res.body)
	}
	var grant map[string]any
	res.decode(t, &grant)
	id, _ := grant["connection_id"].(string)
	if grant["authUrl"] == nil || grant["auth_url"] != nil || grant["state"] == "" || grant["provider_id"] != "prov-1" {
		t.Fatalf("grant %v", grant)
	}
	seen := h.fb.lastSeen()
	if seen.apiKey != brokerKey || seen.requestID != "flow-req-1" {
		t.Fatalf("broker saw api key %t, request id %q", seen.apiKey == brokerKey, seen.requestID)
	}
	if seen.body["workspace_id"] != "agent-a" || seen.body["client_name"] != "agent-a" || seen.body["user_id"] != "u-42" ||
		seen.body["provider_name"] != "Google" || seen.body["return_url"] != "https://app.example.com/done" {
		t.Fatalf("consent body %v", seen.body)
	}

	check := func(want gateway.ConnectionStatus) {
		t.Helper()
		res := h.call("GET", "/v1/check-connection/"+id, "/v1/check-connection/{connection_id}", bearer(keyA), "")
		var got struct{ Status, Detail, Reason string }
		res.decode(t, &got)
		if res.status != http.StatusOK || got != (struct{ Status, Detail, Reason string }{want.Status, want.Detail, want.Reason}) {
			t.Fatalf("check: %d %s, want %+v", res.status, res.body, want)
		}
		if q := h.fb.lastSeen().query.Get("client_name"); q != "agent-a" {
			t.Fatalf("broker saw client_name %q", q)
		}
	}
	check(gateway.ConnectionStatus{Status: "pending"})

	res = h.call("GET", "/v1/token/"+id, "/v1/token/{connection_id}", bearer(keyA), "")
	if code, _ := res.envelope(t); res.status != http.StatusConflict || code != "not_ready" {
		t.Fatalf("token while pending: %d %s", res.status, res.body)
	}

	h.fb.set(id, "exchanging", "", nil)
	check(gateway.ConnectionStatus{Status: "pending", Detail: "exchanging"})

	h.fb.set(id, "active", "", activeToken("at-SECRET-A"))
	check(gateway.ConnectionStatus{Status: "active"})

	for _, p := range []struct{ method, path, template string }{
		{"GET", "/v1/token/" + id, "/v1/token/{connection_id}"},
		{"POST", "/v1/refresh/" + id, "/v1/refresh/{connection_id}"},
	} {
		res = h.call(p.method, p.path, p.template, map[string]string{"X-API-Key": keyA}, "")
		if res.status != http.StatusOK {
			t.Fatalf("%s %s: %d %s", p.method, p.path, res.status, res.body)
		}
		var tok map[string]any
		res.decode(t, &tok)
		if tok["access_token"] != "at-SECRET-A" || tok["token_type"] != "Bearer" || tok["expires_in"] != float64(3599) ||
			tok["expires_at"] != "2030-01-01T01:00:00Z" || tok["scope"] != "openid email" || tok["provider"] != "google" ||
			tok["id_token"] != "idt-SECRET-at-SECRET-A" || tok["tenant"] != "contoso" || tok["ext_expires_in"] != float64(3599) {
			t.Fatalf("%s token body %v", p.method, tok)
		}
		if flags, _ := tok["flags"].(map[string]any); flags["a"] != true {
			t.Fatalf("object extra lost: %v", tok["flags"])
		}
	}

	h.fb.set(id, "revoked", "user revoked access", nil)
	check(gateway.ConnectionStatus{Status: "failed", Detail: "revoked", Reason: "user revoked access"})
	res = h.call("GET", "/v1/token/"+id, "/v1/token/{connection_id}", bearer(keyA), "")
	if code, _ := res.envelope(t); res.status != http.StatusConflict || code != "reauth_required" {
		t.Fatalf("token when revoked: %d %s", res.status, res.body)
	}
	h.fb.set(id, "failed", "access_denied", nil)
	check(gateway.ConnectionStatus{Status: "failed", Reason: "access_denied"})
	h.fb.set(id, "expired", "", nil)
	check(gateway.ConnectionStatus{Status: "failed", Detail: "expired"})
}

func TestProvidersHideSecrets(t *testing.T) {
	h := newHarness(t)
	res := h.call("GET", "/v1/providers", "/v1/providers", bearer(keyB), "")
	if res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.body)
	}
	if strings.Contains(string(res.body), "client") || strings.Contains(string(res.body), "issuer") {
		t.Fatalf("providers answer carries broker-only fields: %s", res.body)
	}
	want := `{"providers":[{"name":"google","display_name":"Google","scopes":["openid","email"]}]}`
	if strings.TrimSpace(string(res.body)) != want {
		t.Fatalf("got %s, want %s", res.body, want)
	}
}

func TestOpenEndpoints(t *testing.T) {
	h := newHarness(t)
	for _, p := range []string{"/health", "/metrics", "/openapi.yaml"} {
		res := h.call("GET", p, p, nil, "")
		if res.status != http.StatusOK || len(res.body) == 0 {
			t.Fatalf("%s: %d", p, res.status)
		}
	}
	res := h.call("GET", "/openapi.yaml", "/openapi.yaml", nil, "")
	if !strings.Contains(string(res.body), "openapi: 3.0.3") {
		t.Fatalf("served document is not api/openapi.yaml")
	}
	if n := h.fb.requests.Load(); n != 0 {
		t.Fatalf("open endpoints called the broker %d times", n)
	}
}

func TestUnauthorized(t *testing.T) {
	h := newHarness(t)
	const id = "0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b"
	cases := []struct {
		name string
		hdr  map[string]string
	}{
		{"no key", nil},
		{"wrong bearer key", bearer("not-a-key")},
		{"wrong x-api-key", map[string]string{"X-API-Key": "not-a-key"}},
		{"key of the broker", bearer(brokerKey)},
		{"basic scheme", map[string]string{"Authorization": "Basic " + keyA}},
		{"bearer without key", map[string]string{"Authorization": "Bearer "}},
		{"key prefix", bearer(keyA[:len(keyA)-1])},
		{"hash instead of key", bearer("sha256:" + strings.Repeat("0", 64))},
	}
	calls := []struct{ method, path, template, body string }{
		{"POST", "/v1/request-connection", "/v1/request-connection",
			`{"user_id":"u","provider_name":"google","scopes":["openid"],"return_url":"https://a.example/"}`},
		{"GET", "/v1/check-connection/" + id, "/v1/check-connection/{connection_id}", ""},
		{"GET", "/v1/token/" + id, "/v1/token/{connection_id}", ""},
		{"POST", "/v1/refresh/" + id, "/v1/refresh/{connection_id}", ""},
		{"GET", "/v1/providers", "/v1/providers", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range calls {
				res := h.call(c.method, c.path, c.template, tc.hdr, c.body)
				if code, _ := res.envelope(t); res.status != http.StatusUnauthorized || code != "unauthorized" {
					t.Fatalf("%s %s: %d %s", c.method, c.path, res.status, res.body)
				}
				if !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("no WWW-Authenticate: %v", res.header)
				}
			}
		})
	}
	if n := h.fb.requests.Load(); n != 0 {
		t.Fatalf("unauthenticated requests reached the broker %d times", n)
	}
}

func TestConnectionIDPathTricks(t *testing.T) {
	h := newHarness(t)
	const good = "0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b"
	ids := []struct{ name, raw string }{
		{"traversal to providers", "..%2F..%2Fproviders%3F"},
		{"encoded hash", "%23"},
		{"encoded hash after id", good + "%23x"},
		{"upper case", strings.ToUpper(good)},
		{"braces", "%7B" + good + "%7D"},
		{"extra segment", good + "/token"},
		{"encoded slash inside", good[:8] + "%2F" + good[9:]},
		{"query smuggling", good + "%3Fclient_name%3Dagent-b"},
		{"no hyphens", strings.ReplaceAll(good, "-", "")},
		{"urn form", "urn:uuid:" + good},
		{"trailing space", good + "%20"},
		{"dot dot", "%2E%2E"},
		{"empty", ""},
	}
	routes := []struct{ method, prefix, template string }{
		{"GET", "/v1/check-connection", "/v1/check-connection/{connection_id}"},
		{"GET", "/v1/token", "/v1/token/{connection_id}"},
		{"POST", "/v1/refresh", "/v1/refresh/{connection_id}"},
	}
	for _, id := range ids {
		t.Run(id.name, func(t *testing.T) {
			for _, r := range routes {
				res := h.call(r.method, r.prefix+"/"+id.raw, r.template, bearer(keyA), "")
				if code, _ := res.envelope(t); res.status != http.StatusBadRequest || code != "bad_request" {
					t.Fatalf("%s %s/%s: %d %s", r.method, r.prefix, id.raw, res.status, res.body)
				}
			}
		})
	}
	// Without the trailing slash the id is missing altogether.
	for _, r := range routes {
		if res := h.call(r.method, r.prefix, r.template, bearer(keyA), ""); res.status != http.StatusBadRequest {
			t.Fatalf("%s %s: %d", r.method, r.prefix, res.status)
		}
	}
	if n := h.fb.requests.Load(); n != 0 {
		t.Fatalf("malformed ids reached the broker %d times", n)
	}
}

func TestOtherClientsConnectionIsNotFound(t *testing.T) {
	h := newHarness(t)
	id, _ := h.requestConnection(keyA)
	h.fb.set(id, "active", "", activeToken("at-SECRET-owner"))
	before := h.fb.requests.Load()
	for _, c := range []struct{ method, path, template string }{
		{"GET", "/v1/check-connection/" + id, "/v1/check-connection/{connection_id}"},
		{"GET", "/v1/token/" + id, "/v1/token/{connection_id}"},
		{"POST", "/v1/refresh/" + id, "/v1/refresh/{connection_id}"},
	} {
		res := h.call(c.method, c.path, c.template, bearer(keyB), "")
		if code, _ := res.envelope(t); res.status != http.StatusNotFound || code != "not_found" {
			t.Fatalf("%s %s as agent-b: %d %s", c.method, c.path, res.status, res.body)
		}
		if strings.Contains(string(res.body), "at-SECRET-owner") {
			t.Fatal("another client's token leaked")
		}
		if q := h.fb.lastSeen().query.Get("client_name"); q != "agent-b" {
			t.Fatalf("broker saw client_name %q", q)
		}
	}
	if got := h.fb.requests.Load() - before; got != 3 {
		t.Fatalf("broker saw %d requests, want 3 (404s are not retried)", got)
	}
	// The owner still reads it: the attempts changed nothing.
	if res := h.call("GET", "/v1/token/"+id, "/v1/token/{connection_id}", bearer(keyA), ""); res.status != http.StatusOK {
		t.Fatalf("owner: %d %s", res.status, res.body)
	}
}

// Metadata takes any JSON value per key and reaches the broker as written
// (compacted), HTML characters, member order and number spelling included.
func TestRequestConnectionAnyJSONMetadata(t *testing.T) {
	h := newHarness(t)
	res := h.call("POST", "/v1/request-connection", "/v1/request-connection", bearer(keyA),
		`{"user_id":"u","provider_name":"google","scopes":["openid"],"return_url":"https://app.example.com/done",
		  "metadata":{"priority": 1, "ratio": 1.50, "on": true, "none": null, "label": "<b> & \u00e9",
		  "tags": ["a", {"z": 1, "a": 2}]}}`)
	if res.status != http.StatusOK {
		t.Fatalf("request-connection: %d %s", res.status, res.body)
	}
	const want = `"metadata":{"label":"<b> & \u00e9","none":null,"on":true,"priority":1,"ratio":1.50,"tags":["a",{"z":1,"a":2}]}`
	if raw := string(h.fb.lastSeen().raw); !strings.Contains(raw, want) {
		t.Fatalf("broker got %s\nwant it to contain %s", raw, want)
	}
}

func TestRequestConnectionBadInput(t *testing.T) {
	h := newHarness(t)
	const valid = `"user_id":"u","provider_name":"google","scopes":["openid"],"return_url":"https://app.example.com/done"`
	cases := []struct {
		name, ct, body, code, msg string
	}{
		{"unknown field", "", `{` + valid + `,"client_name":"agent-b"}`, "bad_request",
			`unknown field "client_name"; accepted fields: user_id, provider_name, scopes, return_url, metadata, connection_id`},
		{"missing user_id", "", `{"provider_name":"google","scopes":["openid"],"return_url":"https://a.example/"}`, "bad_request", "user_id is required"},
		{"missing provider_name", "", `{"user_id":"u","scopes":["openid"],"return_url":"https://a.example/"}`, "bad_request", "provider_name is required"},
		{"missing scopes", "", `{"user_id":"u","provider_name":"google","return_url":"https://a.example/"}`, "bad_request", "scopes is required"},
		{"missing return_url", "", `{"user_id":"u","provider_name":"google","scopes":["openid"]}`, "bad_request", "return_url is required"},
		{"empty scopes", "", `{"user_id":"u","provider_name":"google","scopes":[],"return_url":"https://a.example/"}`, "bad_request", "scopes must not be empty"},
		{"blank scope", "", `{"user_id":"u","provider_name":"google","scopes":[""],"return_url":"https://a.example/"}`, "bad_request", "scopes[0]"},
		{"scope with space", "", `{"user_id":"u","provider_name":"google","scopes":["openid email"],"return_url":"https://a.example/"}`, "bad_request", "scopes[0]"},
		{"return_url not a URL", "", `{"user_id":"u","provider_name":"google","scopes":["openid"],"return_url":"not a url"}`, "bad_request", "return_url"},
		{"return_url relative", "", `{"user_id":"u","provider_name":"google","scopes":["openid"],"return_url":"/done"}`, "bad_request", "return_url"},
		{"return_url javascript", "", `{"user_id":"u","provider_name":"google","scopes":["openid"],"return_url":"javascript:alert(1)"}`, "bad_request", "return_url"},
		{"return_url ftp", "", `{"user_id":"u","provider_name":"google","scopes":["openid"],"return_url":"ftp://a.example/"}`, "bad_request", "return_url"},
		{"user_id with C1 CSI", "", `{"user_id":"u\u009b2J","provider_name":"google","scopes":["openid"],"return_url":"https://a.example/"}`,
			"bad_request", "user_id must not contain control characters (U+009B at byte 1)"},
		{"user_id with escape", "", `{"user_id":"\u001b]0;x","provider_name":"google","scopes":["openid"],"return_url":"https://a.example/"}`,
			"bad_request", "user_id must not contain control characters (U+001B at byte 0)"},
		{"provider_name with NEL", "", `{"user_id":"u","provider_name":"goo\u0085gle","scopes":["openid"],"return_url":"https://a.example/"}`,
			"bad_request", "provider_name must not contain control characters"},
		{"return_url with C1", "", `{"user_id":"u","provider_name":"google","scopes":["openid"],"return_url":"https://a.example/\u009b"}`,
			"bad_request", "return_url must not contain control characters"},
		{"metadata key with DEL", "", `{` + valid + `,"metadata":{"a\u007f":1}}`, "bad_request", `metadata "a\x7f": keys must not contain control characters`},
		{"metadata not an object", "", `{` + valid + `,"metadata":["k"]}`, "bad_request", `field "metadata" must be an object`},
		{"metadata too deep", "", `{` + valid + `,"metadata":{"tree":[[[[[[[[[1]]]]]]]]]}}`, "bad_request", `metadata "tree": value nests deeper than 8`},
		{"metadata too large", "", `{` + valid + `,"metadata":{"k":"` + strings.Repeat("a", 4096) + `"}}`, "bad_request", "metadata: larger than 4096 bytes"},
		{"metadata control character", "", `{` + valid + `,"metadata":{"note":"\u001b]0;x\u0007"}}`, "bad_request", `metadata "note": value holds a string with a control character`},
		{"scopes not array", "", `{"user_id":"u","provider_name":"google","scopes":"openid","return_url":"https://a.example/"}`, "bad_request", "scopes"},
		{"not JSON", "", `user_id=u`, "bad_request", "malformed"},
		{"empty body", "", ``, "bad_request", "empty"},
		{"two objects", "", `{` + valid + `}{}`, "bad_request", "single JSON object"},
		{"over 64 KiB", "", `{` + valid + `,"metadata":{"k":"` + strings.Repeat("a", 70<<10) + `"}}`, "too_large", "larger than 65536"},
		{"form content type", "application/x-www-form-urlencoded", `{` + valid + `}`, "bad_request", "Content-Type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := bearer(keyA)
			if tc.ct != "" {
				hdr["Content-Type"] = tc.ct
			}
			res := h.call("POST", "/v1/request-connection", "/v1/request-connection", hdr, tc.body)
			code, msg := res.envelope(t)
			if res.status != http.StatusBadRequest || code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Fatalf("got %d %s, want 400 %s containing %q", res.status, res.body, tc.code, tc.msg)
			}
		})
	}
	if n := h.fb.requests.Load(); n != 0 {
		t.Fatalf("bad input reached the broker %d times", n)
	}
}

func TestBrokerRejectsConsent(t *testing.T) {
	h := newHarness(t)
	res := h.call("POST", "/v1/request-connection", "/v1/request-connection", bearer(keyA),
		`{"user_id":"u","provider_name":"nosuch","scopes":["x"],"return_url":"https://a.example/"}`)
	code, msg := res.envelope(t)
	if res.status != http.StatusNotFound || code != "not_found" || msg != "provider not found" {
		t.Fatalf("broker 404 not passed through: %d %s", res.status, res.body)
	}
}

func TestUnknownRouteAndWrongMethod(t *testing.T) {
	h := newHarness(t)
	const id = "0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b"
	cases := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/v2/token/" + id, 404, ""},
		{"GET", "/", 404, ""},
		{"GET", "/v1/providers/google", 404, ""},
		{"GET", "/v1/request-connection", 405, "POST"},
		{"DELETE", "/v1/token/" + id, 405, "GET, HEAD"},
		{"POST", "/v1/token/" + id, 405, "GET, HEAD"},
		{"GET", "/v1/refresh/" + id, 405, "POST"},
		{"PUT", "/v1/check-connection/" + id, 405, "GET, HEAD"},
		{"POST", "/v1/providers", 405, "GET, HEAD"},
		{"POST", "/health", 405, "GET, HEAD"},
		{"DELETE", "/metrics", 405, "GET, HEAD"},
		// Paths served for two methods name both.
		{"PUT", "/v1/connections/" + id, 405, "DELETE, GET, HEAD"},
		{"POST", "/v1/connections", 405, "DELETE, GET, HEAD"},
	}
	for _, tc := range cases {
		res := h.call(tc.method, tc.path, "", bearer(keyA), "")
		if res.status != tc.status || res.header.Get("Allow") != tc.allow {
			t.Fatalf("%s %s: %d Allow=%q, want %d %q", tc.method, tc.path, res.status, res.header.Get("Allow"), tc.status, tc.allow)
		}
	}
	if n := h.fb.requests.Load(); n != 0 {
		t.Fatalf("broker called %d times", n)
	}
}

// The gateway words its 404 for an unknown route exactly as the broker
// does (internal/broker TestUnknownRouteWording), in the error envelope.
func TestUnknownRouteWording(t *testing.T) {
	h := newHarness(t)
	for path, want := range map[string]string{
		"/nope":              "no such endpoint: GET /nope",
		"/v1/providers/x":    "no such endpoint: GET /v1/providers/x",
		"/evil%1b%5b2J/path": "no such endpoint: GET /evil%1b%5b2J/path",
	} {
		res := h.call(http.MethodGet, path, "", bearer(keyA), "")
		if code, msg := res.envelope(t); res.status != http.StatusNotFound || code != "not_found" || msg != want {
			t.Errorf("GET %s: %d %s %q, want 404 not_found %q", path, res.status, code, msg, want)
		}
	}
}

func TestAnonymousMode(t *testing.T) {
	h := newHarness(t, func(c *gateway.Config) { c.Clients, c.AllowAnonymous = nil, true })
	id, _ := h.requestConnection("ignored")
	seen := h.fb.lastSeen()
	if seen.body["workspace_id"] != "default" {
		t.Fatalf("workspace %v", seen.body["workspace_id"])
	}
	// Anonymous callers are one owner of their own: every broker call
	// names it, so the broker never answers a gateway call unfiltered.
	if seen.body["client_name"] != gateway.AnonymousClient || !seen.gateway {
		t.Fatalf("anonymous consent sent client_name %v (gateway header %v)", seen.body["client_name"], seen.gateway)
	}
	res := h.call("GET", "/v1/check-connection/"+id, "/v1/check-connection/{connection_id}", nil, "")
	if q := h.fb.lastSeen().query; res.status != http.StatusOK || q.Get("client_name") != gateway.AnonymousClient {
		t.Fatalf("anonymous check: %d, query %v", res.status, q)
	}
}

func TestMetricsExposed(t *testing.T) {
	h := newHarness(t)
	id, _ := h.requestConnection(keyA)
	h.fb.set(id, "active", "", activeToken("at-SECRET-m"))
	h.call("GET", "/v1/token/"+id, "/v1/token/{connection_id}", bearer(keyA), "")
	h.call("POST", "/v1/refresh/"+id, "/v1/refresh/{connection_id}", bearer(keyA), "")
	res := h.call("GET", "/metrics", "/metrics", nil, "")
	for _, want := range []string{
		`gateway_http_requests_total{route="GET /v1/token/{connection_id...}",status="200"} 1`,
		`gateway_http_requests_total{route="POST /v1/request-connection",status="200"} 1`,
		`gateway_http_request_duration_seconds_count{route="POST /v1/refresh/{connection_id...}"} 1`,
		`gateway_broker_requests_total{op="get_token",result="ok"} 1`,
		`gateway_broker_requests_total{op="consent_spec",result="ok"} 1`,
		`gateway_broker_request_duration_seconds_count{op="refresh"} 1`,
		`token_refresh_total{result="ok"} 1`,
		`token_refresh_duration_seconds_count 1`,
	} {
		if !strings.Contains(string(res.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestSpecCatchesDrift shows that the response validation the other tests
// rely on rejects answers the contract does not allow.
func TestSpecCatchesDrift(t *testing.T) {
	doc := loadSpec(t)
	jsonHdr := http.Header{"Content-Type": {"application/json"}}
	cases := []struct {
		name, method, path, template string
		status                       int
		body                         string
	}{
		{"token without access_token", "GET", "/v1/token/" + someID, "/v1/token/{connection_id}", 200, `{"token_type":"Bearer","scope":"","provider":"g"}`},
		{"snake_case auth_url", "POST", "/v1/request-connection", "/v1/request-connection", 200,
			`{"auth_url":"https://a/","connection_id":"` + someID + `","state":"s","scopes":[],"provider_id":"p"}`},
		{"status outside the enum", "GET", "/v1/check-connection/" + someID, "/v1/check-connection/{connection_id}", 200, `{"status":"revoked"}`},
		{"provider with client_id", "GET", "/v1/providers", "/v1/providers", 200,
			`{"providers":[{"name":"g","display_name":"G","scopes":[],"client_id":"x"}]}`},
		{"undocumented status", "GET", "/v1/providers", "/v1/providers", 404, `{"code":"not_found","message":"x"}`},
		{"error without message", "GET", "/v1/token/" + someID, "/v1/token/{connection_id}", 404, `{"code":"not_found"}`},
		{"unknown path answering 200", "GET", "/nope", "", 200, `{}`},
		{"unknown path without envelope", "GET", "/nope", "", 404, `{"error":"x"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, _ := url.Parse("http://gateway" + tc.path)
			req := &http.Request{Method: tc.method, URL: u, Header: http.Header{}}
			if err := checkResponse(doc, req, tc.template, result{status: tc.status, header: jsonHdr, body: []byte(tc.body)}); err == nil {
				t.Fatal("validation accepted an answer the contract forbids")
			}
		})
	}
}

// TestAgentPolicyLimitsProvidersAndScopes: an agent whose key options list
// providers and scopes gets a 400 naming what it may not ask for, and the
// broker never hears of the request; inside its limits it is served.
func TestAgentPolicyLimitsProvidersAndScopes(t *testing.T) {
	h := newHarness(t, func(c *gateway.Config) {
		clients, err := gateway.ParseClientKeys("agent-a:" + keyA + ";providers=google;scopes=openid|https://www.googleapis.com/auth/drive.*")
		if err != nil {
			t.Fatal(err)
		}
		c.Clients = clients
	})
	refused := []struct{ name, body, code, msg string }{
		{"other provider", `{"user_id":"u","provider_name":"github","scopes":["openid"],"return_url":"https://a.example/"}`,
			"provider_not_allowed", `provider "github" is not among the providers this agent may connect to`},
		{"scope outside the list", `{"user_id":"u","provider_name":"google","scopes":["openid","https://www.googleapis.com/auth/gmail.send"],"return_url":"https://a.example/"}`,
			"scope_not_allowed", `scope "https://www.googleapis.com/auth/gmail.send" is not among the scopes`},
		{"MCP server by URL", `{"user_id":"u","mcp_server_url":"https://mcp.example/","return_url":"https://a.example/"}`,
			"provider_not_allowed", "not to MCP servers by URL"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			res := h.call("POST", "/v1/request-connection", "/v1/request-connection", bearer(keyA), tc.body)
			code, msg := res.envelope(t)
			if res.status != http.StatusBadRequest || code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Fatalf("got %d %s, want 400 %s containing %q", res.status, res.body, tc.code, tc.msg)
			}
		})
	}
	if n := h.fb.requests.Load(); n != 0 {
		t.Fatalf("refused requests reached the broker %d times", n)
	}
	res := h.call("POST", "/v1/request-connection", "/v1/request-connection", bearer(keyA),
		`{"user_id":"u","provider_name":"Google","scopes":["openid","https://www.googleapis.com/auth/drive.readonly"],"return_url":"https://a.example/"}`)
	if res.status != http.StatusOK {
		t.Fatalf("allowed request: %d %s", res.status, res.body)
	}
}

// TestAmbiguousCredentials: a request carrying two different keys (or one
// header twice) is refused (gRPC: TestGRPCAmbiguousCredentials), even when one key is valid; the
// same key in both headers is fine.
func TestAmbiguousCredentials(t *testing.T) {
	h := newHarness(t)
	send := func(hdr http.Header) (int, string) {
		req, _ := http.NewRequest("GET", h.srv.URL+"/v1/providers", nil)
		req.Header = hdr
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, hdr := range []http.Header{
		{"Authorization": {"Bearer " + keyA}, "X-Api-Key": {keyB}},
		{"Authorization": {"Bearer nope"}, "X-Api-Key": {keyA}},
		{"X-Api-Key": {keyA, keyA}},
		{"Authorization": {"Bearer " + keyA, "Bearer " + keyB}},
	} {
		if st, body := send(hdr); st != http.StatusUnauthorized || !strings.Contains(body, "unauthorized") {
			t.Fatalf("%v: %d %s", hdr, st, body)
		}
	}
	if st, body := send(http.Header{"Authorization": {"Bearer " + keyA}, "X-Api-Key": {keyA}}); st != http.StatusOK {
		t.Fatalf("same key twice: %d %s", st, body)
	}
}
