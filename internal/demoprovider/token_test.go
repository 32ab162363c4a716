package demoprovider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// decodeAccessToken verifies an access token with the test key and returns
// its typ header and claims.
func decodeAccessToken(t *testing.T, token string) (string, map[string]any) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("access token is not a JWS: %v", err)
	}
	payload, err := jws.Verify(&testKey().PublicKey)
	if err != nil {
		t.Fatalf("access token signature: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	typ, _ := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType].(string)
	return typ, claims
}

func TestCodeFlowVerifiedWithGoOIDC(t *testing.T) {
	e := newEnv(t, nil)
	call := e.mustTokens(t, "openid email profile offline_access demo.read", "alice")
	now := e.clock.Now()

	if call.str("token_type") != "Bearer" || call.body["expires_in"] != float64(300) {
		t.Errorf("token_type %q expires_in %v", call.str("token_type"), call.body["expires_in"])
	}
	if call.str("scope") != "openid email profile offline_access demo.read" {
		t.Errorf("scope = %q", call.str("scope"))
	}
	if call.str("refresh_token") == "" {
		t.Error("offline_access granted but no refresh_token")
	}
	if cc := call.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}

	ctx := oidc.ClientContext(context.Background(), e.raw)
	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	cfg := &oidc.Config{ClientID: testClientID, Now: e.clock.Now}
	idToken, err := provider.Verifier(cfg).Verify(ctx, call.str("id_token"))
	if err != nil {
		t.Fatalf("go-oidc rejected the ID token: %v", err)
	}
	if idToken.Nonce != testNonce || idToken.Issuer != e.issuer || idToken.Subject != Subject("alice") {
		t.Errorf("nonce %q iss %q sub %q", idToken.Nonce, idToken.Issuer, idToken.Subject)
	}
	if !reflect.DeepEqual(idToken.Audience, []string{testClientID}) {
		t.Errorf("aud = %v", idToken.Audience)
	}
	if err := idToken.VerifyAccessToken(call.str("access_token")); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var extra struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
		AuthTime      int64  `json:"auth_time"`
		Username      string `json:"preferred_username"`
	}
	if err := idToken.Claims(&extra); err != nil {
		t.Fatal(err)
	}
	if extra.Email != "alice@demo.dromos.local" || !extra.EmailVerified || extra.AuthTime != now.Unix() || extra.Username != "alice" {
		t.Errorf("ID token claims = %+v", extra)
	}

	// The same token must fail for another audience or issuer: the
	// checks above are not vacuous.
	if _, err := provider.Verifier(&oidc.Config{ClientID: "someone-else", Now: e.clock.Now}).Verify(ctx, call.str("id_token")); err == nil {
		t.Error("ID token accepted for another client")
	}
	keys := oidc.NewRemoteKeySet(ctx, e.issuer+"/jwks")
	if _, err := oidc.NewVerifier("http://127.0.0.1:1/other", keys, cfg).Verify(ctx, call.str("id_token")); err == nil {
		t.Error("ID token accepted for another issuer")
	}

	typ, at := decodeAccessToken(t, call.str("access_token"))
	if typ != "at+jwt" {
		t.Errorf("access token typ = %q", typ)
	}
	wantAT := map[string]any{
		"iss": e.issuer, "sub": Subject("alice"), "aud": testClientID,
		"exp": float64(now.Add(5 * time.Minute).Unix()), "iat": float64(now.Unix()),
		"scope": "openid email profile offline_access demo.read",
	}
	for k, v := range wantAT {
		if at[k] != v {
			t.Errorf("access token %s = %v, want %v", k, at[k], v)
		}
	}
	if jti, _ := at["jti"].(string); jti == "" {
		t.Error("access token has no jti")
	}

	if s := e.p.Stats(); s.CodesExchanged != 1 || s.AuthorizationCodeRequests != 1 || s.Approvals != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestNoRefreshOrIDTokenUnlessAsked(t *testing.T) {
	e := newEnv(t, nil)
	call := e.mustTokens(t, "demo.read", "demo")
	if call.str("refresh_token") != "" || call.str("id_token") != "" {
		t.Errorf("got refresh_token %t id_token %t for scope demo.read",
			call.str("refresh_token") != "", call.str("id_token") != "")
	}
	if call.str("access_token") == "" || call.str("scope") != "demo.read" {
		t.Errorf("body = %v", call.body)
	}
}

func TestOAuth2ClientInterop(t *testing.T) {
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		e := newEnv(t, nil)
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, e.raw)
		cfg := oauth2.Config{
			ClientID:     testClientID,
			ClientSecret: testClientSecret,
			RedirectURL:  e.redirectURI,
			Scopes:       []string{"openid", "offline_access"},
			Endpoint: oauth2.Endpoint{
				AuthURL: e.issuer + "/authorize", TokenURL: e.issuer + "/token", AuthStyle: style,
			},
		}
		verifier := oauth2.GenerateVerifier()
		f := e.openConsent(t, mustQuery(t, cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier))))
		e.submit(t, f, "approve", "demo")
		tok, err := cfg.Exchange(ctx, e.cb.last(t).Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("auth style %d: exchange: %v", style, err)
		}
		if tok.RefreshToken == "" || tok.Extra("id_token") == nil || tok.Expiry.IsZero() {
			t.Errorf("auth style %d: token %+v", style, tok)
		}
	}
}

func mustQuery(t *testing.T, rawURL string) url.Values {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func TestCodeExchangeRejected(t *testing.T) {
	tests := []struct {
		name      string
		form      func(e *env, code string) url.Values
		advance   time.Duration
		wantError string
		// codeSurvives: a malformed request does not consume the code;
		// any real redemption attempt does.
		codeSurvives bool
	}{
		{"wrong verifier", func(e *env, code string) url.Values {
			return exchangeForm(code, strings.Repeat("x", 43), e.redirectURI)
		}, 0, "invalid_grant", false},
		{"verifier too short", func(e *env, code string) url.Values {
			return exchangeForm(code, testVerifier[:42], e.redirectURI)
		}, 0, "invalid_grant", false},
		{"challenge sent as verifier", func(e *env, code string) url.Values {
			return exchangeForm(code, challengeOf(testVerifier), e.redirectURI)
		}, 0, "invalid_grant", false},
		{"wrong redirect_uri", func(e *env, code string) url.Values {
			return exchangeForm(code, testVerifier, e.redirectURI+"x")
		}, 0, "invalid_grant", false},
		{"unknown code", func(e *env, _ string) url.Values {
			return exchangeForm("not-a-code", testVerifier, e.redirectURI)
		}, 0, "invalid_grant", true},
		{"expired code", func(e *env, code string) url.Values {
			return exchangeForm(code, testVerifier, e.redirectURI)
		}, DefaultCodeTTL, "invalid_grant", false},
		{"missing verifier", func(e *env, code string) url.Values {
			return exchangeForm(code, "", e.redirectURI)
		}, 0, "invalid_request", true},
		{"missing redirect_uri", func(_ *env, code string) url.Values {
			return exchangeForm(code, testVerifier, "")
		}, 0, "invalid_request", true},
		{"missing code", func(e *env, _ string) url.Values {
			return exchangeForm("", testVerifier, e.redirectURI)
		}, 0, "invalid_request", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			code := e.login(t, "openid offline_access", "demo")
			e.clock.Advance(tc.advance)
			call := e.post(t, "/token", tc.form(e, code), authBasic, testClientSecret)
			if call.status != http.StatusBadRequest || call.str("error") != tc.wantError {
				t.Fatalf("status %d body %v, want 400 %s", call.status, call.body, tc.wantError)
			}
			if call.str("access_token") != "" || e.p.Stats().CodesExchanged != 0 {
				t.Fatal("tokens were issued")
			}
			after := e.exchange(t, code, testVerifier)
			if got := after.status == http.StatusOK; got != tc.codeSurvives {
				t.Errorf("code usable afterwards = %t, want %t (body %v)", got, tc.codeSurvives, after.body)
			}
		})
	}
}

func exchangeForm(code, verifier, redirectURI string) url.Values {
	f := url.Values{"grant_type": {"authorization_code"}}
	for k, v := range map[string]string{"code": code, "code_verifier": verifier, "redirect_uri": redirectURI} {
		if v != "" {
			f.Set(k, v)
		}
	}
	return f
}

func TestCodeReuseRevokesIssuedTokens(t *testing.T) {
	e := newEnv(t, nil)
	code := e.login(t, "openid offline_access", "demo")
	first := e.exchange(t, code, testVerifier)
	if first.status != http.StatusOK {
		t.Fatalf("first exchange: %d %v", first.status, first.body)
	}
	if ui := e.userinfo(t, first.str("access_token")); ui.status != http.StatusOK {
		t.Fatalf("userinfo before replay: %d", ui.status)
	}

	replay := e.exchange(t, code, testVerifier)
	if replay.status != http.StatusBadRequest || replay.str("error") != "invalid_grant" || replay.str("access_token") != "" {
		t.Fatalf("replay: %d %v", replay.status, replay.body)
	}
	if ui := e.userinfo(t, first.str("access_token")); ui.status != http.StatusUnauthorized {
		t.Errorf("access token from a replayed code still works at userinfo: %d", ui.status)
	}
	if r := e.refresh(t, first.str("refresh_token")); r.str("error") != "invalid_grant" {
		t.Errorf("refresh token from a replayed code still works: %d %v", r.status, r.body)
	}
	if s := e.p.Stats(); s.CodeReuses != 1 || s.CodesExchanged != 1 || s.Refreshes != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestClientAuthentication(t *testing.T) {
	basic := func(id, secret string) func(*http.Request, url.Values) {
		return func(r *http.Request, _ url.Values) {
			r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(id+":"+secret)))
		}
	}
	post := func(id, secret string) func(*http.Request, url.Values) {
		return func(_ *http.Request, f url.Values) {
			f.Set("client_id", id)
			f.Set("client_secret", secret)
		}
	}
	enc := url.QueryEscape
	tests := []struct {
		name       string
		auth       func(*http.Request, url.Values)
		wantStatus int
		wantError  string
		wantBasic  bool
	}{
		{"basic", basic(enc(testClientID), enc(testClientSecret)), 200, "", false},
		{"post", post(testClientID, testClientSecret), 200, "", false},
		{"basic with matching client_id in body", func(r *http.Request, f url.Values) {
			basic(enc(testClientID), enc(testClientSecret))(r, f)
			f.Set("client_id", testClientID)
		}, 200, "", false},
		{"basic wrong secret", basic(enc(testClientID), "wrong"), 401, "invalid_client", true},
		{"basic secret not form-encoded", basic(testClientID, testClientSecret), 401, "invalid_client", true},
		{"basic unknown client", basic("other", enc(testClientSecret)), 401, "invalid_client", true},
		{"basic secret prefix", basic(enc(testClientID), enc(testClientSecret[:5])), 401, "invalid_client", true},
		{"malformed basic header", func(r *http.Request, _ url.Values) { r.Header.Set("Authorization", "Basic %%%") }, 401, "invalid_client", true},
		{"bearer instead of basic", func(r *http.Request, _ url.Values) { r.Header.Set("Authorization", "Bearer x") }, 401, "invalid_client", true},
		{"post wrong secret", post(testClientID, "wrong"), 401, "invalid_client", false},
		{"post empty secret", post(testClientID, ""), 401, "invalid_client", false},
		{"post unknown client", post("other", testClientSecret), 401, "invalid_client", false},
		{"no credentials", func(*http.Request, url.Values) {}, 401, "invalid_client", true},
		{"client_id alone", func(_ *http.Request, f url.Values) { f.Set("client_id", testClientID) }, 401, "invalid_client", true},
		{"both methods", func(r *http.Request, f url.Values) {
			basic(enc(testClientID), enc(testClientSecret))(r, f)
			post(testClientID, testClientSecret)(r, f)
		}, 400, "invalid_request", false},
		{"basic with other client_id in body", func(r *http.Request, f url.Values) {
			basic(enc(testClientID), enc(testClientSecret))(r, f)
			f.Set("client_id", "other")
		}, 400, "invalid_request", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			code := e.login(t, "openid", "demo")
			form := exchangeForm(code, testVerifier, e.redirectURI)
			req, _ := http.NewRequest(http.MethodPost, e.issuer+"/token", nil)
			tc.auth(req, form)
			req.Body = io.NopCloser(strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := e.raw.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || (tc.wantError != "" && body["error"] != tc.wantError) {
				t.Fatalf("status %d body %v, want %d %s", resp.StatusCode, body, tc.wantStatus, tc.wantError)
			}
			if got := strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic "); got != tc.wantBasic {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
			if tc.wantStatus == http.StatusOK {
				return
			}
			if body["access_token"] != nil {
				t.Fatal("tokens issued to an unauthenticated client")
			}
			// Nothing changed: no grant was counted and the code still
			// works for the real client.
			if s := e.p.Stats(); s.AuthorizationCodeRequests != 0 || s.CodesExchanged != 0 {
				t.Errorf("stats after refused auth = %+v", s)
			}
			if after := e.exchange(t, code, testVerifier); after.status != http.StatusOK {
				t.Errorf("code unusable after a refused client: %d %v", after.status, after.body)
			}
		})
	}
}

func TestTokenRequestMalformed(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name      string
		form      url.Values
		ctype     string
		wantError string
	}{
		{"client_credentials", url.Values{"grant_type": {"client_credentials"}}, "", "unsupported_grant_type"},
		{"password", url.Values{"grant_type": {"password"}, "username": {"a"}, "password": {"b"}}, "", "unsupported_grant_type"},
		{"no grant_type", url.Values{"code": {"x"}}, "", "invalid_request"},
		{"repeated grant_type", url.Values{"grant_type": {"refresh_token", "authorization_code"}}, "", "invalid_request"},
		{"JSON body", url.Values{"grant_type": {"refresh_token"}}, "application/json", "invalid_request"},
		{"refresh without token", url.Values{"grant_type": {"refresh_token"}}, "", "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.issuer+"/token", strings.NewReader(tc.form.Encode()))
			req.SetBasicAuth(testClientID, url.QueryEscape(testClientSecret))
			ct := tc.ctype
			if ct == "" {
				ct = "application/x-www-form-urlencoded"
			}
			req.Header.Set("Content-Type", ct)
			resp, err := e.raw.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || body["error"] != tc.wantError {
				t.Errorf("status %d body %v, want 400 %s", resp.StatusCode, body, tc.wantError)
			}
			if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("headers %v", resp.Header)
			}
		})
	}
	if s := e.p.Stats(); s.OtherGrantRequests != 3 {
		t.Errorf("OtherGrantRequests = %d, want 3 (two unsupported, one missing)", s.OtherGrantRequests)
	}
}
