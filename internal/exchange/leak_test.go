package exchange_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/exchange"
)

// TestNoSecretsInLogsOrErrors drives successes, the auth fallback and
// failures whose bodies echo what we sent, then searches every log line and
// error message for anything secret, raw or encoded.
func TestNoSecretsInLogsOrErrors(t *testing.T) {
	const headerKey = "hdr-key-3c1d"
	p := newProvider(t, func(w http.ResponseWriter, r *http.Request, req seenRequest) {
		switch {
		case req.Header.Get("Authorization") != "":
			writeBody(w, 401, "application/json", `{"error":"invalid_client"}`)
		case req.Form.Get("grant_type") == "authorization_code" && r.URL.Path == "/ok":
			writeBody(w, 200, "application/json", tokenBody)
		case req.Form.Get("grant_type") == "authorization_code":
			// A broken provider echoing the request back.
			writeBody(w, 200, "text/html", "<pre>"+req.Form.Encode()+"</pre>")
		case req.Form.Get("grant_type") == "refresh_token":
			writeBody(w, 400, "application/json", `{"error":"invalid_request","refresh":"`+testRefresh+`"}`)
		default:
			writeBody(w, 500, "text/plain", "token="+req.Form.Get("token"))
		}
	})
	var logs bytes.Buffer
	c := newClient(exchange.Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ep := endpoint(p.URL+"/ok", exchange.AuthAuto)
	ep.ExtraHeaders = map[string]string{"X-Api-Key": headerKey}
	ctx := context.Background()

	var errs []error
	tok, err := c.ExchangeCode(ctx, ep, testCode, testVerifier, testRedirect)
	if err != nil {
		t.Fatalf("ExchangeCode: %v", err)
	}
	echo := ep
	echo.TokenURL = p.URL + "/echo"
	_, err = c.ExchangeCode(ctx, echo, testCode, testVerifier, testRedirect)
	errs = append(errs, err)
	_, err = c.Refresh(ctx, ep, testRefresh, []string{"openid"})
	errs = append(errs, err)
	errs = append(errs, c.Revoke(ctx, p.URL+"/revoke", ep, testAccess, "access_token"))

	var texts []string
	for i, err := range errs {
		if err == nil {
			t.Fatalf("call %d succeeded, want an error", i)
		}
		texts = append(texts, err.Error(), fmt.Sprintf("%+v", err))
	}
	texts = append(texts, logs.String(),
		fmt.Sprint(tok), fmt.Sprintf("%+v", tok), fmt.Sprintf("%#v", tok),
		fmt.Sprint(ep), fmt.Sprintf("%#v", ep.ClientSecret))
	if !strings.Contains(logs.String(), "client_secret_post") {
		t.Fatalf("expected debug logs of the calls, got %q", logs.String())
	}

	secrets := []string{testSecret, testCode, testVerifier, testAccess, testRefresh, testIDToken, headerKey}
	var forbidden []string
	for _, s := range secrets {
		forbidden = append(forbidden, s, url.QueryEscape(s))
	}
	forbidden = append(forbidden, base64.StdEncoding.EncodeToString([]byte(testBasicRaw)))
	for _, text := range texts {
		for _, s := range forbidden {
			if strings.Contains(text, s) {
				t.Errorf("%q leaks %q", text, s)
			}
		}
	}
}
