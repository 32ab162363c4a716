package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/provider"
)

// These tests run registrations made from real templates against local
// fakes that behave like the provider in the respect the template's quirks
// handle. The fakes' URLs override the template's endpoints, which is
// itself the "explicit fields win" rule at work.

type fakeProvider struct {
	*httptest.Server
	tokenBody   string
	contentType string
	realmID     string
}

func newFakeProvider(t *testing.T, contentType, tokenBody, realmID string) *fakeProvider {
	t.Helper()
	f := &fakeProvider{tokenBody: tokenBody, contentType: contentType, realmID: realmID}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		back, err := url.Parse(q.Get("redirect_uri"))
		if err != nil || q.Get("code_challenge_method") != "S256" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		bq := back.Query()
		bq.Set("code", "code-1")
		bq.Set("state", q.Get("state"))
		if f.realmID != "" {
			bq.Set("realmId", f.realmID)
		}
		back.RawQuery = bq.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		if r.ParseForm() != nil || r.PostForm.Get("code") != "code-1" {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", f.contentType)
		_, _ = io.WriteString(w, f.tokenBody)
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

// connect does what the broker does for one consent: authorization URL,
// the provider's redirect, code exchange, quirk normalisation, and the
// callback parameters to keep.
func connect(t *testing.T, p provider.Profile, hc *http.Client) (*exchange.Token, map[string]string, error) {
	t.Helper()
	authURL, err := p.AuthorizationURL(p.AuthURL, provider.AuthRequest{ClientID: p.ClientID,
		RedirectURI: "https://broker.example.com/auth/callback", Scopes: p.Scopes, State: "st-1", CodeChallenge: "cc"})
	if err != nil {
		return nil, nil, err
	}
	noFollow := *hc
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noFollow.Get(authURL)
	if err != nil {
		return nil, nil, err
	}
	resp.Body.Close()
	cb, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		return nil, nil, fmt.Errorf("authorize answered %d", resp.StatusCode)
	}
	kept, err := p.CallbackValues(cb.Query())
	if err != nil {
		return nil, nil, err
	}
	ep := exchange.Endpoint{TokenURL: p.TokenURL, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
		AuthMethod: exchange.AuthMethod(p.TokenEndpointAuthMethod)}
	p.ConfigureEndpoint(&ep)
	xc := exchange.New(exchange.Options{HTTPClient: hc, Now: func() time.Time { return time.Unix(2e9, 0) }})
	tok, err := xc.ExchangeCode(context.Background(), ep, cb.Query().Get("code"), "verifier", "https://broker.example.com/auth/callback")
	if err != nil {
		return nil, nil, err
	}
	if err := p.NormalizeTokenResponse(tok); err != nil {
		return nil, nil, err
	}
	return tok, kept, nil
}

func expandAgainst(t *testing.T, template string, f *fakeProvider, params map[string]string) provider.Profile {
	t.Helper()
	p, err := mustLoad(t).Expand(provider.Profile{Template: template, TemplateParams: params,
		AuthURL: f.URL + "/authorize", TokenURL: f.URL + "/token", ClientID: "cid", ClientSecret: "sec"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSlackUserTemplateFlow(t *testing.T) {
	body := `{"ok":true,"app_id":"A1","access_token":"xoxb-bot","token_type":"bot","scope":"commands",` +
		`"team":{"id":"T1"},"authed_user":{"id":"U1","scope":"users:read,search:read","access_token":"xoxp-user","token_type":"user"}}`
	f := newFakeProvider(t, "application/json; charset=utf-8", body, "")
	p := expandAgainst(t, "slack-user", f, nil)
	tok, kept, err := connect(t, p, f.Client())
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "xoxp-user" || tok.TokenType != "Bearer" || tok.Scope != "users:read search:read" || kept != nil {
		t.Fatalf("token %v (%s), kept %v", tok, tok.AccessToken, kept)
	}

	// The same answer through the bot template gives the bot token.
	bot := expandAgainst(t, "slack", f, nil)
	tok, _, err = connect(t, bot, f.Client())
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "xoxb-bot" || tok.TokenType != "Bearer" {
		t.Fatalf("bot template gave %v (%s)", tok, tok.AccessToken)
	}
}

func TestSlackUserTemplateRefusesBotToken(t *testing.T) {
	f := newFakeProvider(t, "application/json", `{"ok":true,"access_token":"xoxb-bot","token_type":"bot","authed_user":{"id":"U1"}}`, "")
	_, _, err := connect(t, expandAgainst(t, "slack-user", f, nil), f.Client())
	if !errors.Is(err, provider.ErrUnexpectedToken) {
		t.Fatalf("error = %v, want ErrUnexpectedToken", err)
	}
}

func TestGitHubTemplateFormBody(t *testing.T) {
	f := newFakeProvider(t, "application/x-www-form-urlencoded; charset=utf-8",
		"access_token=gho_abc&scope=read%3Auser&token_type=bearer", "")
	tok, _, err := connect(t, expandAgainst(t, "github", f, nil), f.Client())
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "gho_abc" || tok.Scope != "read:user" || !tok.Expiry.IsZero() {
		t.Fatalf("token = %v", tok)
	}
}

func TestQuickBooksTemplateKeepsRealmID(t *testing.T) {
	f := newFakeProvider(t, "application/json",
		`{"access_token":"eyJ.a.b","token_type":"bearer","refresh_token":"AB1","expires_in":3600,"x_refresh_token_expires_in":8726400}`,
		"9130350000000001")
	p := expandAgainst(t, "quickbooks", f, nil)
	tok, kept, err := connect(t, p, f.Client())
	if err != nil {
		t.Fatal(err)
	}
	if kept["realmId"] != "9130350000000001" || len(kept) != 1 {
		t.Fatalf("kept %v", kept)
	}
	if tok.RefreshToken != "AB1" {
		t.Fatalf("token = %v", tok)
	}
}

func TestShopifyTemplateFlow(t *testing.T) {
	f := newFakeProvider(t, "application/json", `{"access_token":"shpat_1","scope":"read_products,write_orders"}`, "")
	p := expandAgainst(t, "shopify", f, map[string]string{"shop": "acme-store"})
	tok, _, err := connect(t, p, f.Client())
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "Bearer" || tok.Scope != "read_products write_orders" {
		t.Fatalf("token = %v", tok)
	}
}

// Google gives a refresh token only for access_type=offline, and on a
// repeated consent only with prompt=consent; it refuses the offline_access
// scope. The fake does the same, so the google template must get a refresh
// token from it with scopes asking for offline_access.
func TestGoogleTemplateOfflineAccess(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		back, _ := url.Parse(q.Get("redirect_uri"))
		bq := back.Query()
		bq.Set("state", q.Get("state"))
		if slices.Contains(strings.Fields(q.Get("scope")), "offline_access") {
			bq.Set("error", "invalid_scope")
		} else if q.Get("access_type") == "offline" && q.Get("prompt") == "consent" {
			bq.Set("code", "offline-code")
		} else {
			bq.Set("code", "online-code")
		}
		back.RawQuery = bq.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		body := map[string]any{"access_token": "ya29.a", "token_type": "Bearer", "expires_in": 3599, "scope": "openid email"}
		if r.PostFormValue("code") == "offline-code" {
			body["refresh_token"] = "1//0g-refresh"
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	p, err := mustLoad(t).Expand(provider.Profile{Template: "google", AuthURL: srv.URL + "/authorize", TokenURL: srv.URL + "/token",
		ClientID: "cid.apps.googleusercontent.com", ClientSecret: "sec", Scopes: []string{"openid", "email", "offline_access"}})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := connect(t, p, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "1//0g-refresh" {
		t.Fatalf("no refresh token from the google template: %v", tok)
	}

	// Without the quirk the same consent gets no refresh token, so the fake
	// does test it.
	p.Quirks = nil
	if tok, _, err := connect(t, p, srv.Client()); err == nil && tok.RefreshToken != "" {
		t.Fatal("the fake gave a refresh token without the quirk; the test proves nothing")
	}
}

// Shopify's expiring offline tokens come with expires_in and a refresh
// token; the template must keep both.
func TestShopifyTemplateExpiringOfflineToken(t *testing.T) {
	f := newFakeProvider(t, "application/json",
		`{"access_token":"shpat_2","scope":"read_products","expires_in":3600,"refresh_token":"shprt_1","refresh_token_expires_in":7776000}`, "")
	tok, _, err := connect(t, expandAgainst(t, "shopify", f, map[string]string{"shop": "acme-store"}), f.Client())
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "shprt_1" || tok.Expiry.IsZero() || tok.TokenType != "Bearer" {
		t.Fatalf("token = %v", tok)
	}
}

// Notion documents its token endpoint with a JSON body and HTTP Basic
// client authentication; the fake accepts nothing else.
func TestNotionTemplateJSONTokenRequest(t *testing.T) {
	f := newFakeProvider(t, "application/json", "", "")
	mux := http.NewServeMux()
	mux.Handle("GET /authorize", f.Config.Handler)
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		id, sec, ok := r.BasicAuth()
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&body) != nil ||
			!ok || id != "cid" || sec != "sec" || body["grant_type"] != "authorization_code" || body["code"] != "code-1" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"invalid_request"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"ntn_1","token_type":"bearer","refresh_token":"nrt_1","bot_id":"b1",`+
			`"workspace_id":"w1","workspace_name":"Acme","owner":{"type":"user"}}`)
	})
	// Revocation as Notion's reference documents it: Basic, a JSON body
	// holding only token, and a Notion-Version header.
	revoked := 0
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		id, sec, ok := r.BasicAuth()
		if r.Header.Get("Notion-Version") == "" || r.Header.Get("Content-Type") != "application/json" ||
			json.NewDecoder(r.Body).Decode(&body) != nil || !ok || id != "cid" || sec != "sec" ||
			len(body) != 1 || body["token"] != "nrt_1" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"object":"error","status":400,"code":"validation_error"}`)
			return
		}
		revoked++
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"request_id":"r1"}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p, err := mustLoad(t).Expand(provider.Profile{Template: "notion", AuthURL: srv.URL + "/authorize", TokenURL: srv.URL + "/token",
		RevocationURL: srv.URL + "/revoke", ClientID: "cid", ClientSecret: "sec"})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := connect(t, p, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "ntn_1" || tok.RefreshToken != "nrt_1" || tok.Extra["workspace_id"] != "w1" {
		t.Fatalf("token = %v", tok)
	}
	revoke := func(p provider.Profile) error {
		ep := exchange.Endpoint{TokenURL: p.TokenURL, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
			AuthMethod: exchange.AuthMethod(p.TokenEndpointAuthMethod)}
		p.ConfigureEndpoint(&ep)
		return exchange.New(exchange.Options{HTTPClient: srv.Client()}).Revoke(context.Background(), p.RevocationURL, ep, tok.RefreshToken, "refresh_token")
	}
	if err := revoke(p); err != nil || revoked != 1 {
		t.Fatalf("revocation: %v (%d revoked)", err, revoked)
	}
	noVersion := p
	noVersion.TokenRequestHeaders = nil
	if err := revoke(noVersion); err == nil {
		t.Fatal("the fake accepted a revocation without Notion-Version; the test proves nothing")
	}
	p.Quirks = nil
	if _, _, err := connect(t, p, srv.Client()); err == nil {
		t.Fatal("the fake accepted a form body; the test proves nothing")
	}
}
