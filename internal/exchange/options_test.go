package exchange_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/exchange"
)

// slackBoth is what Slack's oauth.v2.access answers when both bot and user
// scopes were granted: the bot token at the top, the user token nested.
const slackBoth = `{"ok":true,"app_id":"A0KRD7HC3","access_token":"xoxb-bot-1","token_type":"bot",` +
	`"scope":"commands,incoming-webhook","bot_user_id":"U0KRQLJ9H","team":{"id":"T9TK3CUKW"},` +
	`"authed_user":{"id":"U1234","scope":"chat:write,users:read","access_token":"xoxp-user-1","token_type":"user"}}`

// slackUserOnly is the answer when only user scopes were asked for.
const slackUserOnly = `{"ok":true,"app_id":"A0KRD7HC3","team":{"id":"T9TK3CUKW"},` +
	`"authed_user":{"id":"U1234","scope":"users:read","access_token":"xoxp-user-2","token_type":"user",` +
	`"refresh_token":"xoxe-1-r","expires_in":43200}}`

func TestParseOptions(t *testing.T) {
	slackUser := exchange.ParseOptions{AcceptAnyTokenType: true, TokenMember: "authed_user"}
	tests := []struct {
		name    string
		opts    exchange.ParseOptions
		ct      string
		body    string
		want    *exchange.Token
		wantErr error
	}{
		{
			name:    "strict by default: slack bot token_type refused",
			body:    slackBoth,
			wantErr: exchange.ErrBadTokenType,
		},
		{
			name: "any token_type: slack bot token accepted as it is",
			opts: exchange.ParseOptions{AcceptAnyTokenType: true},
			body: `{"ok":true,"access_token":"xoxb-bot-1","token_type":"bot","scope":"commands"}`,
			want: &exchange.Token{AccessToken: "xoxb-bot-1", TokenType: "bot", Scope: "commands",
				Extra: map[string]any{"ok": true}},
		},
		{
			name: "any token_type: member missing (shopify)",
			opts: exchange.ParseOptions{AcceptAnyTokenType: true},
			body: `{"access_token":"shpat-1","scope":"read_products,write_orders"}`,
			want: &exchange.Token{AccessToken: "shpat-1", Scope: "read_products,write_orders"},
		},
		{
			name:    "any token_type still wants a string",
			opts:    exchange.ParseOptions{AcceptAnyTokenType: true},
			body:    `{"access_token":"a","token_type":7}`,
			wantErr: exchange.ErrBadTokenType,
		},
		{
			name:    "any token_type still wants an access token",
			opts:    exchange.ParseOptions{AcceptAnyTokenType: true},
			body:    `{"token_type":"bot"}`,
			wantErr: exchange.ErrMissingAccessToken,
		},
		{
			name: "token member: user token lifted, bot token dropped",
			opts: slackUser,
			body: slackBoth,
			want: &exchange.Token{AccessToken: "xoxp-user-1", TokenType: "user", Scope: "chat:write,users:read",
				Extra: map[string]any{"ok": true, "app_id": "A0KRD7HC3", "bot_user_id": "U0KRQLJ9H",
					"team": map[string]any{"id": "T9TK3CUKW"}, "authed_user": map[string]any{"id": "U1234"}}},
		},
		{
			name: "token member: user-only answer has no top-level token",
			opts: slackUser,
			body: slackUserOnly,
			want: &exchange.Token{AccessToken: "xoxp-user-2", TokenType: "user", Scope: "users:read",
				RefreshToken: "xoxe-1-r", ExpiresIn: 43200, Expiry: after(43200),
				Extra: map[string]any{"ok": true, "app_id": "A0KRD7HC3",
					"team": map[string]any{"id": "T9TK3CUKW"}, "authed_user": map[string]any{"id": "U1234"}}},
		},
		{
			name: "token member absent: top level parsed (rotated user token refresh)",
			opts: slackUser,
			body: `{"ok":true,"access_token":"xoxe.xoxp-3","token_type":"user","refresh_token":"xoxe-1-s","expires_in":43200}`,
			want: &exchange.Token{AccessToken: "xoxe.xoxp-3", TokenType: "user", RefreshToken: "xoxe-1-s",
				ExpiresIn: 43200, Expiry: after(43200), Extra: map[string]any{"ok": true}},
		},
		{
			name: "token member without access_token: top level parsed, member kept",
			opts: slackUser,
			body: `{"access_token":"xoxb-4","token_type":"bot","authed_user":{"id":"U9"}}`,
			want: &exchange.Token{AccessToken: "xoxb-4", TokenType: "bot",
				Extra: map[string]any{"authed_user": map[string]any{"id": "U9"}}},
		},
		{
			name:    "token member with a non-string token is malformed",
			opts:    slackUser,
			body:    `{"authed_user":{"access_token":12,"token_type":"user"}}`,
			wantErr: exchange.ErrMalformed,
		},
		{
			name:    "token member does not hide a provider error",
			opts:    slackUser,
			body:    `{"ok":false,"error":"invalid_code","authed_user":{"access_token":"x"}}`,
			wantErr: &exchange.Error{},
		},
		{
			name: "token member and a form body: nothing to lift",
			opts: slackUser,
			ct:   ctForm,
			body: "access_token=gho_1&token_type=bearer&scope=repo",
			want: &exchange.Token{AccessToken: "gho_1", TokenType: "bearer", Scope: "repo"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := tt.ct
			if ct == "" {
				ct = ctJSON
			}
			got, err := exchange.ParseResponseWith(tt.opts, 200, ct, []byte(tt.body), parseNow)
			if tt.want == nil {
				var oe *exchange.Error
				if _, isOAuth := tt.wantErr.(*exchange.Error); isOAuth {
					if !errors.As(err, &oe) {
						t.Fatalf("error = %v, want an OAuth *Error", err)
					}
				} else if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v (token %v), want %v", err, got, tt.wantErr)
				}
				if got != nil {
					t.Fatal("a token came back with the error")
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v, want success", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("token =\n%#v\nwant\n%#v", *got, *tt.want)
			}
		})
	}
}

// TestTokenMemberKeepsOtherTokensOut checks the security point of lifting:
// the bot token Slack sends next to the user token appears nowhere in the
// result, so no caller can hand it out as an extra.
func TestTokenMemberKeepsOtherTokensOut(t *testing.T) {
	tok, err := exchange.ParseResponseWith(exchange.ParseOptions{AcceptAnyTokenType: true, TokenMember: "authed_user"},
		200, ctJSON, []byte(slackBoth), parseNow)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(tok.Extra)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "xoxb-bot-1") || strings.Contains(string(raw), "xoxp-user-1") {
		t.Fatalf("a token leaked into Extra: %s", raw)
	}
}

// TestEndpointParseSwitches drives the switches through the Client against
// a fake Slack token endpoint, for the code exchange and a refresh.
func TestEndpointParseSwitches(t *testing.T) {
	p := newProvider(t, func(w http.ResponseWriter, _ *http.Request, req seenRequest) {
		switch req.Form.Get("grant_type") {
		case "authorization_code":
			writeBody(w, 200, "application/json; charset=utf-8", slackBoth)
		default:
			writeBody(w, 200, "application/json; charset=utf-8",
				`{"ok":true,"access_token":"xoxe.xoxp-5","token_type":"user","refresh_token":"xoxe-1-t","expires_in":43200}`)
		}
	})
	c := newClient(exchange.Options{})

	strict := endpoint(p.URL+"/api/oauth.v2.access", exchange.AuthBasic)
	if _, err := c.ExchangeCode(context.Background(), strict, testCode, testVerifier, testRedirect); !errors.Is(err, exchange.ErrBadTokenType) {
		t.Fatalf("strict endpoint: error = %v, want ErrBadTokenType", err)
	}

	ep := strict
	ep.AcceptAnyTokenType, ep.TokenMember = true, "authed_user"
	tok, err := c.ExchangeCode(context.Background(), ep, testCode, testVerifier, testRedirect)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "xoxp-user-1" || tok.TokenType != "user" {
		t.Fatalf("exchange gave %v, want the user token", tok)
	}
	fresh, err := c.Refresh(context.Background(), ep, "xoxe-1-old", nil)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.AccessToken != "xoxe.xoxp-5" || fresh.RefreshToken != "xoxe-1-t" {
		t.Fatalf("refresh gave %v", fresh)
	}
}

func FuzzParseResponseWith(f *testing.F) {
	for _, s := range []string{slackBoth, slackUserOnly, `{"authed_user":{"access_token":"x"}}`,
		`{"access_token":"a","authed_user":[1]}`, "access_token=a&authed_user=b"} {
		f.Add(s, true, "authed_user")
	}
	f.Fuzz(func(t *testing.T, body string, anyType bool, member string) {
		opts := exchange.ParseOptions{AcceptAnyTokenType: anyType, TokenMember: member}
		tok, err := exchange.ParseResponseWith(opts, 200, "", []byte(body), parseNow)
		if err != nil {
			if tok != nil {
				t.Fatal("token and error together")
			}
			return
		}
		if tok.AccessToken == "" {
			t.Fatal("success without an access token")
		}
		for _, k := range []string{"access_token", "token_type", "refresh_token", "id_token", "scope", "expires_in"} {
			if _, ok := tok.Extra[k]; ok {
				t.Fatalf("token member %q left in Extra", k)
			}
		}
		if !anyType && !strings.EqualFold(tok.TokenType, "bearer") {
			t.Fatalf("strict parse accepted token_type %q", tok.TokenType)
		}
	})
}
