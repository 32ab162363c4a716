package exchange_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/exchange"
)

func TestRevoke(t *testing.T) {
	tests := []struct {
		name      string
		answer    func(http.ResponseWriter, *http.Request, seenRequest)
		hint      string
		wantClass exchange.Class
		wantCode  string
	}{
		{"200 empty", func(w http.ResponseWriter, _ *http.Request, _ seenRequest) { w.WriteHeader(200) }, "refresh_token", exchange.ClassNone, ""},
		{"200 json", answerJSON(200, `{}`), "", exchange.ClassNone, ""},
		{"503 is transient", func(w http.ResponseWriter, _ *http.Request, _ seenRequest) {
			w.Header().Set("Retry-After", "30")
			writeBody(w, 503, "text/plain", "unavailable")
		}, "access_token", exchange.ClassTransient, ""},
		{"unsupported_token_type", answerJSON(400, `{"error":"unsupported_token_type"}`), "access_token", exchange.ClassProtocol, "unsupported_token_type"},
		{"invalid_client", answerJSON(401, `{"error":"invalid_client"}`), "", exchange.ClassInvalidClient, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProvider(t, tt.answer)
			c := newClient(exchange.Options{})
			err := c.Revoke(context.Background(), p.URL+"/revoke", endpoint("", exchange.AuthBasic), testRefresh, tt.hint)
			if got := exchange.Classify(err); got != tt.wantClass {
				t.Fatalf("Classify(%v) = %q, want %q", err, got, tt.wantClass)
			}
			var oe *exchange.Error
			if tt.wantClass != exchange.ClassNone && !errors.As(err, &oe) {
				t.Fatalf("error = %v, want *Error", err)
			}
			if oe != nil && oe.Code != tt.wantCode {
				t.Fatalf("Code = %q, want %q", oe.Code, tt.wantCode)
			}
			reqs := p.requests()
			if len(reqs) != 1 {
				t.Fatalf("provider got %d requests, want 1", len(reqs))
			}
			want := url.Values{"token": {testRefresh}}
			if tt.hint != "" {
				want.Set("token_type_hint", tt.hint)
			}
			if !reflect.DeepEqual(reqs[0].Form, want) || !reqs[0].basicOK() {
				t.Fatalf("form = %v, basic ok = %t", reqs[0].Form, reqs[0].basicOK())
			}
		})
	}
}

// RevokeGrant sends the refresh token when there is one, else the access
// token, and nothing when there is neither.
func TestRevokeGrantChoosesTheToken(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.PostFormValue("token")+"/"+r.PostFormValue("token_type_hint"))
	}))
	defer srv.Close()
	c := newClient(exchange.Options{})
	ep := endpoint(srv.URL, exchange.AuthPost)
	for _, tc := range [][2]string{{"rt", "at"}, {"", "at"}, {"", ""}} {
		if err := c.RevokeGrant(context.Background(), srv.URL+"/revoke", ep, tc[0], tc[1]); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(got, ",") != "rt/refresh_token,at/access_token" {
		t.Fatalf("revoked %v", got)
	}
}
