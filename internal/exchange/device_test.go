package exchange_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/secret"
)

func TestAuthorizeDevice(t *testing.T) {
	const ok = `"device_code":"dev-secret-code","user_code":"WDJB-MJHT"`
	cases := []struct {
		name         string
		contentType  string
		body         string
		wantURI      string
		wantComplete string
		wantInterval time.Duration
		wantErr      error
	}{
		{"RFC 8628 answer", "application/json", `{` + ok + `,"verification_uri":"https://example.com/device","verification_uri_complete":"https://example.com/device?user_code=WDJB-MJHT","expires_in":1800,"interval":7}`,
			"https://example.com/device", "https://example.com/device?user_code=WDJB-MJHT", 7 * time.Second, nil},
		{"no interval means 5 s", "application/json", `{` + ok + `,"verification_uri":"https://example.com/device","expires_in":"900"}`,
			"https://example.com/device", "", 5 * time.Second, nil},
		{"Google's verification_url", "application/json", `{` + ok + `,"verification_url":"https://www.google.com/device","expires_in":1800,"interval":5}`,
			"https://www.google.com/device", "", 5 * time.Second, nil},
		{"GitHub's form-encoded answer", "application/x-www-form-urlencoded", `device_code=dev-secret-code&user_code=WDJB-MJHT&verification_uri=https%3A%2F%2Fgithub.com%2Flogin%2Fdevice&expires_in=899&interval=5`,
			"https://github.com/login/device", "", 5 * time.Second, nil},
		{"no device_code", "application/json", `{"user_code":"A","verification_uri":"https://e.com/d","expires_in":60}`, "", "", 0, exchange.ErrMalformed},
		{"no user_code", "application/json", `{"device_code":"d","verification_uri":"https://e.com/d","expires_in":60}`, "", "", 0, exchange.ErrMalformed},
		{"user_code with a newline", "application/json", `{"device_code":"d","user_code":"A\nB","verification_uri":"https://e.com/d","expires_in":60}`, "", "", 0, exchange.ErrMalformed},
		{"relative verification_uri", "application/json", `{` + ok + `,"verification_uri":"/device","expires_in":60}`, "", "", 0, exchange.ErrMalformed},
		{"javascript verification_uri_complete", "application/json", `{` + ok + `,"verification_uri":"https://e.com/d","verification_uri_complete":"javascript:alert(1)","expires_in":60}`, "", "", 0, exchange.ErrMalformed},
		{"no expires_in", "application/json", `{` + ok + `,"verification_uri":"https://e.com/d"}`, "", "", 0, exchange.ErrMalformed},
		{"negative interval", "application/json", `{` + ok + `,"verification_uri":"https://e.com/d","expires_in":60,"interval":-1}`, "", "", 0, exchange.ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got url.Values
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = r.ParseForm()
				got = r.PostForm
				w.Header().Set("Content-Type", tc.contentType)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			ep := exchange.Endpoint{TokenURL: srv.URL + "/token", ClientID: "cid", AuthMethod: exchange.AuthNone}
			d, err := exchange.New(exchange.Options{}).AuthorizeDevice(context.Background(), srv.URL+"/device", ep, []string{"read", "write"})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if got.Get("client_id") != "cid" || got.Get("scope") != "read write" {
				t.Fatalf("sent %v", got)
			}
			if tc.wantErr != nil {
				return
			}
			if d.DeviceCode.Reveal() != "dev-secret-code" || d.UserCode != "WDJB-MJHT" || d.VerificationURI != tc.wantURI ||
				d.VerificationURIComplete != tc.wantComplete || d.Interval != tc.wantInterval || d.ExpiresIn <= 0 {
				t.Fatalf("got %+v", d)
			}
		})
	}
}

// TestDeviceAuthorizationHidesDeviceCode: printing or logging the answer
// never shows the device code.
func TestDeviceAuthorizationHidesDeviceCode(t *testing.T) {
	d := exchange.DeviceAuthorization{DeviceCode: "dev-secret-code", UserCode: "ABCD", VerificationURI: "https://e.com/d"}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "device", d)
	for _, s := range []string{fmt.Sprint(d), fmt.Sprintf("%+v", d), fmt.Sprintf("%#v", d), logged.String()} {
		if strings.Contains(s, "dev-secret-code") {
			t.Fatalf("device code shown: %s", s)
		}
	}
}

func TestPollDevice(t *testing.T) {
	cases := []struct {
		name     string
		status   int
		body     string
		wantCode string
	}{
		{"pending", 400, `{"error":"authorization_pending"}`, exchange.ErrCodeAuthorizationPending},
		{"slow down", 400, `{"error":"slow_down"}`, exchange.ErrCodeSlowDown},
		{"denied", 400, `{"error":"access_denied"}`, exchange.ErrCodeAccessDenied},
		{"expired", 400, `{"error":"expired_token"}`, exchange.ErrCodeExpiredToken},
		{"GitHub's pending inside a 200", 200, `{"error":"authorization_pending","error_description":"The authorization request is still pending."}`, exchange.ErrCodeAuthorizationPending},
		{"granted", 200, `{"access_token":"at","token_type":"Bearer","expires_in":3600}`, ""},
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
			ep := exchange.Endpoint{TokenURL: srv.URL + "/token", ClientID: "cid", ClientSecret: "sec", AuthMethod: exchange.AuthPost}
			tok, err := exchange.New(exchange.Options{}).PollDevice(context.Background(), ep, secret.String("the-device-code"))
			if got.Get("grant_type") != exchange.GrantTypeDeviceCode || got.Get("device_code") != "the-device-code" || got.Get("client_id") != "cid" {
				t.Fatalf("sent %v", got)
			}
			if tc.wantCode == "" {
				if err != nil || tok.AccessToken != "at" {
					t.Fatalf("got %v %v", tok, err)
				}
				return
			}
			var oe *exchange.Error
			if !errors.As(err, &oe) || oe.Code != tc.wantCode {
				t.Fatalf("got %v, want OAuth error %s", err, tc.wantCode)
			}
		})
	}
	if _, err := exchange.New(exchange.Options{}).PollDevice(context.Background(), exchange.Endpoint{TokenURL: "https://e.com/t", ClientID: "c"}, ""); !errors.Is(err, exchange.ErrInvalidInput) {
		t.Fatalf("empty device code: %v", err)
	}
}

// TestDeviceExpiryBounded: a device code's expires_in is held to an hour
// (providers give 10 to 30 minutes); a shorter one is kept as given.
func TestDeviceExpiryBounded(t *testing.T) {
	for given, want := range map[int]time.Duration{604800: time.Hour, 900: 15 * time.Minute} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = fmt.Fprintf(w, `{"device_code":"d-0123456789","user_code":"WDJB-MJHT","verification_uri":"https://e.com/d","expires_in":%d}`, given)
		}))
		ep := exchange.Endpoint{TokenURL: srv.URL + "/token", ClientID: "cid", AuthMethod: exchange.AuthNone}
		d, err := exchange.New(exchange.Options{}).AuthorizeDevice(context.Background(), srv.URL+"/device", ep, nil)
		srv.Close()
		if err != nil || d.ExpiresIn != want {
			t.Fatalf("expires_in %d: got %v (%v), want %v", given, d.ExpiresIn, err, want)
		}
	}
}
