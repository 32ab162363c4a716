package provider

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/secret"
)

// fakeTokenEndpoint answers every POST with body and contentType, like a
// provider's token endpoint, and counts the calls.
func fakeTokenEndpoint(t *testing.T, contentType, body string) (*httptest.Server, *int) {
	t.Helper()
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if r.Method != http.MethodPost || r.ParseForm() != nil || r.PostForm.Get("code") == "" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", contentType)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// exchangeWith redeems a code at srv the way the broker does: an Endpoint
// configured by the profile, then the profile's normalisation.
func exchangeWith(t *testing.T, p Profile, srv *httptest.Server) (*exchange.Token, error) {
	t.Helper()
	ep := exchange.Endpoint{TokenURL: srv.URL + "/token", ClientID: "cid", ClientSecret: secret.String("sec"),
		AuthMethod: exchange.AuthBasic}
	p.ConfigureEndpoint(&ep)
	c := exchange.New(exchange.Options{HTTPClient: srv.Client(), Now: func() time.Time { return time.Unix(1e9, 0) }})
	tok, err := c.ExchangeCode(context.Background(), ep, "code-1", "verifier-1", "https://broker.test/auth/callback")
	if err != nil {
		return nil, err
	}
	if err := p.NormalizeTokenResponse(tok); err != nil {
		return nil, err
	}
	return tok, nil
}

const (
	slackBothBody = `{"ok":true,"app_id":"A1","access_token":"xoxb-bot","token_type":"bot","scope":"commands,chat:write",` +
		`"team":{"id":"T1"},"authed_user":{"id":"U1","scope":"users:read,search:read","access_token":"xoxp-user","token_type":"user"}}`
	slackBotOnlyBody = `{"ok":true,"app_id":"A1","access_token":"xoxb-bot","token_type":"bot","scope":"commands",` +
		`"authed_user":{"id":"U1"}}`
)

func TestQuirkTokenTypeAny(t *testing.T) {
	tests := []struct {
		name      string
		quirks    []string
		body      string
		wantErr   error
		wantToken string
		wantScope string
	}{
		{"slack bot token refused without the quirk", nil, slackBotOnlyBody, exchange.ErrBadTokenType, "", ""},
		{"slack bot token with the quirk", []string{QuirkTokenTypeAny, QuirkCommaScopes}, slackBotOnlyBody, nil, "xoxb-bot", "commands"},
		{"shopify answer without token_type refused without the quirk", nil,
			`{"access_token":"shpat_1","scope":"read_products,write_orders"}`, exchange.ErrBadTokenType, "", ""},
		{"shopify answer without token_type with the quirk", []string{QuirkTokenTypeAny, QuirkCommaScopes},
			`{"access_token":"shpat_1","scope":"read_products,write_orders"}`, nil, "shpat_1", "read_products write_orders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := fakeTokenEndpoint(t, "application/json; charset=utf-8", tt.body)
			tok, err := exchangeWith(t, Profile{Name: "p", Quirks: tt.quirks}, srv)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken != tt.wantToken || tok.TokenType != "Bearer" || tok.Scope != tt.wantScope {
				t.Fatalf("token = %v (%s), want %s Bearer %q", tok, tok.AccessToken, tt.wantToken, tt.wantScope)
			}
		})
	}
}

func TestQuirkSlackUserToken(t *testing.T) {
	p := Profile{Name: "slack-user", Quirks: []string{QuirkSlackUserToken}}

	t.Run("authorization asks for user_scope", func(t *testing.T) {
		raw, err := p.AuthorizationURL("https://slack.com/oauth/v2/authorize", AuthRequest{ClientID: "cid",
			RedirectURI: "https://broker.test/cb", Scopes: []string{"users:read", "search:read"}, State: "st", CodeChallenge: "cc"})
		if err != nil {
			t.Fatal(err)
		}
		q := mustQuery(t, raw)
		if q.Get("user_scope") != "users:read,search:read" || q.Has("scope") {
			t.Fatalf("scopes sent as %v", q)
		}
	})
	t.Run("user token taken from authed_user", func(t *testing.T) {
		srv, _ := fakeTokenEndpoint(t, "application/json; charset=utf-8", slackBothBody)
		tok, err := exchangeWith(t, p, srv)
		if err != nil {
			t.Fatal(err)
		}
		if tok.AccessToken != "xoxp-user" || tok.TokenType != "Bearer" || tok.Scope != "users:read search:read" {
			t.Fatalf("token = %v (%s)", tok, tok.AccessToken)
		}
		if u, _ := tok.Extra["authed_user"].(map[string]any); u["id"] != "U1" || u["access_token"] != nil {
			t.Fatalf("authed_user extra = %v", tok.Extra["authed_user"])
		}
	})
	t.Run("bot token in place of the user token is refused", func(t *testing.T) {
		srv, calls := fakeTokenEndpoint(t, "application/json; charset=utf-8", slackBotOnlyBody)
		tok, err := exchangeWith(t, p, srv)
		if !errors.Is(err, ErrUnexpectedToken) || tok != nil {
			t.Fatalf("got %v, %v; want ErrUnexpectedToken", tok, err)
		}
		if *calls != 1 {
			t.Fatalf("provider called %d times", *calls)
		}
		if strings.Contains(err.Error(), "xoxb") {
			t.Fatalf("error quotes the token: %v", err)
		}
	})
}

func TestQuirkCommaScopes(t *testing.T) {
	p := Profile{Name: "linear", Quirks: []string{QuirkCommaScopes}}
	for _, tc := range []struct{ in, want string }{
		{"read,write", "read write"},
		{"read, write", "read write"},
		{"read write", "read write"},
		{"", ""},
		{",read,,", "read"},
	} {
		tok := &exchange.Token{AccessToken: "a", TokenType: "Bearer", Scope: tc.in}
		if err := p.NormalizeTokenResponse(tok); err != nil {
			t.Fatal(err)
		}
		if tok.Scope != tc.want {
			t.Errorf("scope %q normalised to %q, want %q", tc.in, tok.Scope, tc.want)
		}
	}
	// Without the quirk a scope is the provider's business.
	plain := Profile{Name: "p"}
	tok := &exchange.Token{AccessToken: "a", TokenType: "bearer", Scope: "a,b"}
	if err := plain.NormalizeTokenResponse(tok); err != nil || tok.Scope != "a,b" || tok.TokenType != "bearer" {
		t.Fatalf("plain profile changed the token: %+v %v", tok, err)
	}
}

// TestGitHubFormEncodedBody: GitHub answers form-encoded text/plain unless
// it honours the Accept header; no quirk is needed, the exchange client
// parses it.
func TestGitHubFormEncodedBody(t *testing.T) {
	srv, _ := fakeTokenEndpoint(t, "text/plain; charset=utf-8", "access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=repo%2Cgist&token_type=bearer")
	tok, err := exchangeWith(t, Profile{Name: "github"}, srv)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "gho_16C7e42F292c6912E7710c838347Ae178B4a" || tok.Scope != "repo,gist" {
		t.Fatalf("token = %v", tok)
	}
}

// fakeIntuitAuthorize behaves like Intuit's authorization endpoint after
// the user consented: it redirects to redirect_uri with code, state and the
// company's realmId.
func fakeIntuitAuthorize(t *testing.T, realmID string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		back, err := url.Parse(q.Get("redirect_uri"))
		if err != nil || q.Get("response_type") != "code" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		bq := back.Query()
		bq.Set("code", "AB11")
		bq.Set("state", q.Get("state"))
		bq.Set("realmId", realmID)
		back.RawQuery = bq.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestQuirkCallbackRealmID(t *testing.T) {
	p := Profile{Name: "quickbooks", Quirks: []string{QuirkCallbackRealmID}}
	if got := p.CallbackParams(); len(got) != 1 || got[0] != "realmId" {
		t.Fatalf("CallbackParams = %v", got)
	}
	if got := (&Profile{Name: "p"}).CallbackParams(); got != nil {
		t.Fatalf("plain profile keeps %v", got)
	}

	srv := fakeIntuitAuthorize(t, "9130350000000000")
	authURL, err := p.AuthorizationURL(srv.URL+"/connect/oauth2", AuthRequest{ClientID: "cid",
		RedirectURI: "https://broker.test/auth/callback", Scopes: []string{"com.intuit.quickbooks.accounting"},
		State: "st-1", CodeChallenge: "cc"})
	if err != nil {
		t.Fatal(err)
	}
	hc := srv.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize answered %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	kept, err := p.CallbackValues(loc.Query())
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(kept, map[string]string{"realmId": "9130350000000000"}) {
		t.Fatalf("kept %v from %s", kept, loc)
	}
}

// A profile whose endpoints name a shop keeps only that shop.
func TestCallbackShopMustBeTheProfilesShop(t *testing.T) {
	p := Profile{Name: "shop", Quirks: []string{QuirkCallbackShop}, AuthURL: "https://acme.myshopify.com/admin/oauth/authorize"}
	if got, err := p.CallbackValues(url.Values{"shop": {"acme.myshopify.com"}}); err != nil || got["shop"] != "acme.myshopify.com" {
		t.Fatalf("the profile's own shop: %v %v", got, err)
	}
	if _, err := p.CallbackValues(url.Values{"shop": {"other.myshopify.com"}}); !errors.Is(err, ErrBadCallbackParam) {
		t.Fatalf("another shop: %v", err)
	}
}

func TestCallbackValuesRefusesJunk(t *testing.T) {
	p := Profile{Name: "shop", Quirks: []string{QuirkCallbackShop, QuirkCallbackRealmID}}
	tests := []struct {
		name    string
		query   string
		want    map[string]string
		wantErr bool
	}{
		{"both kept, others ignored", "code=c&state=s&shop=acme.myshopify.com&realmId=42&hmac=x",
			map[string]string{"shop": "acme.myshopify.com", "realmId": "42"}, false},
		{"absent is fine", "code=c&state=s", nil, false},
		{"control character", "shop=acme%0d%0aSet-Cookie:x", nil, true},
		{"space", "realmId=4+2", nil, true},
		{"non-ascii", "shop=%C3%A9", nil, true},
		{"empty", "realmId=", nil, true},
		{"repeated", "realmId=1&realmId=2", nil, true},
		{"too long", "shop=" + strings.Repeat("a", 256), nil, true},
		{"shop on another host", "shop=attacker.example%2Fadmin%2Fapi%2Fx%3F", nil, true},
		{"shop with a path", "shop=acme.myshopify.com%2Fx", nil, true},
		{"shop two labels deep", "shop=a.b.myshopify.com", nil, true},
		{"realmId not a number", "realmId=12%2F..%2Fx", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.CallbackValues(q)
			if tt.wantErr {
				if !errors.Is(err, ErrBadCallbackParam) || got != nil {
					t.Fatalf("got %v, %v; want ErrBadCallbackParam", got, err)
				}
				if strings.Contains(err.Error(), "acme") {
					t.Fatalf("error quotes the value: %v", err)
				}
				return
			}
			if err != nil || !maps.Equal(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestEveryQuirkDescribed(t *testing.T) {
	for _, name := range KnownQuirks() {
		if DescribeQuirk(name) == "" {
			t.Errorf("quirk %q has no description", name)
		}
	}
	if DescribeQuirk("nope") != "" {
		t.Error("unknown quirk described")
	}
}

func TestConfigureEndpointOnlyForQuirks(t *testing.T) {
	tests := []struct {
		quirks     []string
		wantAny    bool
		wantMember string
		wantJSON   bool
	}{
		{nil, false, "", false},
		{[]string{QuirkGoogleOffline, QuirkCommaScopes}, false, "", false},
		{[]string{QuirkTokenTypeAny}, true, "", false},
		{[]string{QuirkSlackUserToken}, true, "authed_user", false},
		{[]string{QuirkJSONTokenRequest}, false, "", true},
	}
	for _, tt := range tests {
		var ep exchange.Endpoint
		p := Profile{Quirks: tt.quirks}
		p.ConfigureEndpoint(&ep)
		if ep.AcceptAnyTokenType != tt.wantAny || ep.TokenMember != tt.wantMember || ep.JSONBody != tt.wantJSON {
			t.Errorf("quirks %v: endpoint %+v", tt.quirks, ep)
		}
	}
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func FuzzCallbackValues(f *testing.F) {
	for _, s := range []string{"realmId=1&shop=a.myshopify.com", "realmId=%00", "shop=1&shop=2", "realmId=" + strings.Repeat("9", 300)} {
		f.Add(s)
	}
	p := Profile{Quirks: []string{QuirkCallbackRealmID, QuirkCallbackShop}}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		got, err := p.CallbackValues(q)
		if err != nil {
			return
		}
		for k, v := range got {
			if k != "realmId" && k != "shop" {
				t.Fatalf("kept unexpected parameter %q", k)
			}
			if !plausibleValue(v, maxCallbackValue) {
				t.Fatalf("kept implausible value %q", v)
			}
		}
	})
}
