package exchange_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/dromos-dev/dromos/internal/exchange"
)

func TestPushAuthorization(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    string
		wantURI string
		wantErr error
	}{
		{"created", 201, `{"request_uri":"urn:ietf:params:oauth:request_uri:x","expires_in":60}`, "urn:ietf:params:oauth:request_uri:x", nil},
		{"expires_in as string", 201, `{"request_uri":"urn:x","expires_in":"90"}`, "urn:x", nil},
		{"no request_uri", 201, `{"expires_in":60}`, "", exchange.ErrMalformed},
		{"no expires_in", 201, `{"request_uri":"urn:x"}`, "", exchange.ErrMalformed},
		{"request_uri with a space", 201, `{"request_uri":"urn:x y","expires_in":60}`, "", exchange.ErrMalformed},
		{"not JSON", 201, `request_uri=urn:x`, "", exchange.ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got url.Values
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = r.ParseForm()
				got = r.PostForm
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c := exchange.New(exchange.Options{})
			ep := exchange.Endpoint{TokenURL: srv.URL + "/token", ClientID: "cid", ClientSecret: "sec", AuthMethod: exchange.AuthPost}
			pr, err := c.PushAuthorization(context.Background(), srv.URL+"/par", ep, url.Values{"state": {"s"}, "scope": {"openid"}})
			if !errors.Is(err, tc.wantErr) || pr.RequestURI != tc.wantURI {
				t.Fatalf("got %+v %v", pr, err)
			}
			if got.Get("client_id") != "cid" || got.Get("client_secret") != "sec" || got.Get("state") != "s" {
				t.Fatalf("pushed form %v", got)
			}
		})
	}
	// An OAuth error answer is an *Error, as at the token endpoint.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"error":"invalid_request","error_description":"bad redirect_uri"}`))
	}))
	defer srv.Close()
	_, err := exchange.New(exchange.Options{}).PushAuthorization(context.Background(), srv.URL+"/par",
		exchange.Endpoint{TokenURL: srv.URL + "/token", ClientID: "cid", ClientSecret: "sec", AuthMethod: exchange.AuthBasic}, url.Values{})
	var oe *exchange.Error
	if !errors.As(err, &oe) || oe.Code != "invalid_request" {
		t.Fatalf("got %v", err)
	}
}
