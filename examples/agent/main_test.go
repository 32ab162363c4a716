package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRun drives the example against a fake gateway and a fake provider
// API: it must print the consent URL, then the API's answer fetched with
// the connection's token.
func TestRun(t *testing.T) {
	const id = "0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b"
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer at-1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"sub":"s-alice","email":"alice@example.test"}`))
	}))
	defer api.Close()
	var asked map[string]any
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/request-connection", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&asked)
		_ = json.NewEncoder(w).Encode(map[string]any{"authUrl": "https://idp.example/authorize?x=1", "connection_id": id,
			"state": "s", "scopes": []string{"openid"}, "provider_id": "p"})
	})
	mux.HandleFunc("GET /v1/check-connection/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"status":"active"}`))
	})
	mux.HandleFunc("GET /v1/token/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"access_token":"at-1","token_type":"Bearer","scope":"openid","provider":"demo"}`))
	})
	gw := httptest.NewServer(mux)
	defer gw.Close()

	var out bytes.Buffer
	err := run(context.Background(), []string{"-gateway", gw.URL, "-api-key", "k", "-user", "bob", "-userinfo", api.URL}, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"https://idp.example/authorize?x=1", "Connected: " + id, `"sub":"s-alice"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if asked["user_id"] != "bob" || asked["provider_name"] != "demo" {
		t.Errorf("request body %v", asked)
	}
}
