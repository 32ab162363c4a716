package exchange_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dromos-dev/dromos/internal/exchange"
)

var parseNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func after(secs int64) time.Time { return parseNow.Add(time.Duration(secs) * time.Second) }

const (
	ctJSON = "application/json; charset=utf-8"
	ctForm = "application/x-www-form-urlencoded; charset=utf-8"
)

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        *exchange.Token
		wantErr     error           // sentinel, checked with errors.Is
		wantOAuth   *exchange.Error // exact *Error expected
	}{
		{
			name:        "google json",
			status:      200,
			contentType: ctJSON,
			body: `{"access_token":"ya29.a0AfB","expires_in":3599,"refresh_token":"1//0gXYZ",
				"scope":"openid https://www.googleapis.com/auth/userinfo.email","token_type":"Bearer","id_token":"eyJhbGciOi.x.y"}`,
			want: &exchange.Token{
				AccessToken: "ya29.a0AfB", TokenType: "Bearer", RefreshToken: "1//0gXYZ", IDToken: "eyJhbGciOi.x.y",
				Scope: "openid https://www.googleapis.com/auth/userinfo.email", ExpiresIn: 3599, Expiry: after(3599),
			},
		},
		{
			name:        "github form encoded",
			status:      200,
			contentType: ctForm,
			body:        "access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=repo%2Cgist&token_type=bearer",
			want:        &exchange.Token{AccessToken: "gho_16C7e42F292c6912E7710c838347Ae178B4a", TokenType: "bearer", Scope: "repo,gist"},
		},
		{
			name:        "github form encoded as text/plain",
			status:      200,
			contentType: "text/plain; charset=utf-8",
			body:        "access_token=gho_abc&expires_in=28800&refresh_token=ghr_def&refresh_token_expires_in=15811200&scope=&token_type=bearer",
			want: &exchange.Token{
				AccessToken: "gho_abc", TokenType: "bearer", RefreshToken: "ghr_def", ExpiresIn: 28800, Expiry: after(28800),
				Extra: map[string]any{"refresh_token_expires_in": "15811200"},
			},
		},
		{
			name:        "json without content type",
			status:      200,
			contentType: "",
			body:        `{"access_token":"a","token_type":"bearer","expires_in":60}`,
			want:        &exchange.Token{AccessToken: "a", TokenType: "bearer", ExpiresIn: 60, Expiry: after(60)},
		},
		{
			name:        "json labelled text/javascript",
			status:      200,
			contentType: "text/javascript",
			body:        `{"access_token":"a","token_type":"bearer"}`,
			want:        &exchange.Token{AccessToken: "a", TokenType: "bearer"},
		},
		{
			name:        "expires_in as string",
			status:      200,
			contentType: ctJSON,
			body:        `{"access_token":"a","token_type":"bearer","expires_in":"3600"}`,
			want:        &exchange.Token{AccessToken: "a", TokenType: "bearer", ExpiresIn: 3600, Expiry: after(3600)},
		},
		{
			name:        "expires_in absent",
			status:      200,
			contentType: ctJSON,
			body:        `{"access_token":"a","token_type":"bearer"}`,
			want:        &exchange.Token{AccessToken: "a", TokenType: "bearer"},
		},
		{
			name:        "expires_in float",
			status:      200,
			contentType: ctJSON,
			body:        `{"access_token":"a","token_type":"bearer","expires_in":3599.9}`,
			want:        &exchange.Token{AccessToken: "a", TokenType: "bearer", ExpiresIn: 3599, Expiry: after(3599)},
		},
		{
			name:        "expires_in float string",
			status:      200,
			contentType: ctJSON,
			body:        `{"access_token":"a","token_type":"bearer","expires_in":" 120.5 "}`,
			want:        &exchange.Token{AccessToken: "a", TokenType: "bearer", ExpiresIn: 120, Expiry: after(120)},
		},
		{
			name:        "expires_in negative is unknown",
			status:      200,
			contentType: ctJSON,
			body:        `{"access_token":"a","token_type":"bearer","expires_in":-5}`,
			want:        &exchange.Token{AccessToken: "a", TokenType: "bearer"},
		},
		{
			name:        "expires_in over ten years is unknown",
			status:      200,
			contentType: ctJSON,
			body:        `{"access_token":"a","token_type":"bearer","expires_in":1893456000}`,
			want:        &exchange.Token{AccessToken: "a", TokenType: "bearer"},
		},
		{
			name:        "expires_in not a number is unknown",
			status:      200,
			contentType: ctJSON,
			body:        `{"access_token":"a","token_type":"bearer","expires_in":"soon"}`,
			want:        &exchange.Token{AccessToken: "a", TokenType: "bearer"},
		},
		{
			name:        "expires_in null is unknown",
			status:      200,
			contentType: ctJSON,
			body:        `{"access_token":"a","token_type":"bearer","expires_in":null}`,
			want:        &exchange.Token{AccessToken: "a", TokenType: "bearer"},
		},
		{
			name:        "token_type BEARER",
			status:      200,
			contentType: ctJSON,
			body:        `{"access_token":"a","token_type":"BEARER"}`,
			want:        &exchange.Token{AccessToken: "a", TokenType: "BEARER"},
		},
		{
			name:        "scope as json array",
			status:      200,
			contentType: ctJSON,
			body:        `{"access_token":"a","token_type":"bearer","scope":["read","activity:write"]}`,
			want:        &exchange.Token{AccessToken: "a", TokenType: "bearer", Scope: "read activity:write"},
		},
		{
			name:        "null error member is no error",
			status:      200,
			contentType: ctJSON,
			body:        `{"access_token":"a","token_type":"bearer","error":null}`,
			want:        &exchange.Token{AccessToken: "a", TokenType: "bearer", Extra: map[string]any{"error": nil}},
		},
		{
			name:        "extra members kept",
			status:      201,
			contentType: ctJSON,
			body:        `{"access_token":"a","token_type":"bearer","ext_expires_in":3599,"x_tenant":"contoso","ok":true}`,
			want: &exchange.Token{AccessToken: "a", TokenType: "bearer", Extra: map[string]any{
				"ext_expires_in": float64(3599), "x_tenant": "contoso", "ok": true,
			}},
		},
		{
			name:        "nested objects in extra (slack authed_user)",
			status:      200,
			contentType: ctJSON,
			body: `{"ok":true,"access_token":"xoxb-17653672481","token_type":"bearer","scope":"commands,incoming-webhook",
				"bot_user_id":"U0KRQLJ9H","team":{"name":"Slack Softball Team","id":"T9TK3CUKW"},
				"authed_user":{"id":"U1234","scope":"chat:write","access_token":"xoxp-1234","token_type":"user"}}`,
			want: &exchange.Token{AccessToken: "xoxb-17653672481", TokenType: "bearer", Scope: "commands,incoming-webhook",
				Extra: map[string]any{
					"ok":          true,
					"bot_user_id": "U0KRQLJ9H",
					"team":        map[string]any{"name": "Slack Softball Team", "id": "T9TK3CUKW"},
					"authed_user": map[string]any{"id": "U1234", "scope": "chat:write", "access_token": "xoxp-1234", "token_type": "user"},
				}},
		},
		{
			name:        "200 with error member",
			status:      200,
			contentType: ctJSON,
			body:        `{"error":"invalid_grant","error_description":"Bad verification code."}`,
			wantOAuth:   &exchange.Error{StatusCode: 200, Code: "invalid_grant", Description: "Bad verification code."},
		},
		{
			name:        "200 with error member next to an access token",
			status:      200,
			contentType: ctJSON,
			body:        `{"access_token":"a","token_type":"bearer","error":"temporarily_unavailable"}`,
			wantOAuth:   &exchange.Error{StatusCode: 200, Code: "temporarily_unavailable"},
		},
		{
			name:        "github 200 with form-encoded error",
			status:      200,
			contentType: ctForm,
			body: "error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+expired." +
				"&error_uri=https%3A%2F%2Fdocs.github.com%2Foauth",
			wantOAuth: &exchange.Error{StatusCode: 200, Code: "bad_verification_code",
				Description: "The code passed is incorrect or expired.", URI: "https://docs.github.com/oauth"},
		},
		{
			name:        "400 invalid_grant",
			status:      400,
			contentType: ctJSON,
			body:        `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`,
			wantOAuth:   &exchange.Error{StatusCode: 400, Code: "invalid_grant", Description: "Token has been expired or revoked."},
		},
		{
			name:        "401 invalid_client",
			status:      401,
			contentType: ctJSON,
			body:        `{"error":"invalid_client"}`,
			wantOAuth:   &exchange.Error{StatusCode: 401, Code: "invalid_client"},
		},
		{
			name:        "400 error as object",
			status:      400,
			contentType: ctJSON,
			body:        `{"error":{"message":"Error validating verification code.","type":"OAuthException","code":100}}`,
			wantOAuth:   &exchange.Error{StatusCode: 400, Code: "OAuthException", Description: "Error validating verification code."},
		},
		{
			name:        "400 json without error member",
			status:      400,
			contentType: ctJSON,
			body:        `{"message":"bad"}`,
			wantOAuth:   &exchange.Error{StatusCode: 400},
		},
		{
			name:        "500 html",
			status:      500,
			contentType: "text/html",
			body:        "<html><body><h1>500 Internal Server Error</h1></body></html>",
			wantOAuth:   &exchange.Error{StatusCode: 500},
		},
		{
			name:      "503 empty body",
			status:    503,
			wantOAuth: &exchange.Error{StatusCode: 503},
		},
		{
			name:        "redirect status",
			status:      302,
			contentType: "text/html",
			body:        "<a href=\"https://evil.example/\">moved</a>",
			wantErr:     exchange.ErrRedirect,
		},
		{
			name:        "garbage",
			status:      200,
			contentType: "text/html",
			body:        "<html>Sign in to continue</html>",
			wantErr:     exchange.ErrMalformed,
		},
		{
			name:        "garbage labelled json",
			status:      200,
			contentType: ctJSON,
			body:        `{"access_token":"a",`,
			wantErr:     exchange.ErrMalformed,
		},
		{
			name:        "json array",
			status:      200,
			contentType: ctJSON,
			body:        `[{"access_token":"a","token_type":"bearer"}]`,
			wantErr:     exchange.ErrMalformed,
		},
		{
			name:        "empty body",
			status:      200,
			contentType: ctJSON,
			body:        "  \n",
			wantErr:     exchange.ErrMalformed,
		},
		{
			name:        "access_token of the wrong type",
			status:      200,
			contentType: ctJSON,
			body:        `{"access_token":12345,"token_type":"bearer"}`,
			wantErr:     exchange.ErrMalformed,
		},
		{
			name:        "refresh_token of the wrong type",
			status:      200,
			contentType: ctJSON,
			body:        `{"access_token":"a","token_type":"bearer","refresh_token":{"x":1}}`,
			wantErr:     exchange.ErrMalformed,
		},
		{
			name:        "empty access_token",
			status:      200,
			contentType: ctJSON,
			body:        `{"access_token":"","token_type":"bearer"}`,
			wantErr:     exchange.ErrMissingAccessToken,
		},
		{
			name:        "missing access_token",
			status:      200,
			contentType: ctForm,
			body:        "token_type=bearer&scope=x",
			wantErr:     exchange.ErrMissingAccessToken,
		},
		{
			name:        "token_type mac",
			status:      200,
			contentType: ctJSON,
			body:        `{"access_token":"a","token_type":"mac","mac_key":"k"}`,
			wantErr:     exchange.ErrBadTokenType,
		},
		{
			name:        "token_type missing",
			status:      200,
			contentType: ctJSON,
			body:        `{"access_token":"a"}`,
			wantErr:     exchange.ErrBadTokenType,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := exchange.ParseResponse(tt.status, tt.contentType, []byte(tt.body), parseNow)
			switch {
			case tt.want != nil:
				if err != nil {
					t.Fatalf("ParseResponse error = %v, want success", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("ParseResponse =\n%#v\nwant\n%#v", *got, *tt.want)
				}
			case tt.wantOAuth != nil:
				var oe *exchange.Error
				if !errors.As(err, &oe) {
					t.Fatalf("ParseResponse error = %v (token %v), want *Error", err, got)
				}
				if *oe != *tt.wantOAuth {
					t.Fatalf("ParseResponse error = %+v, want %+v", *oe, *tt.wantOAuth)
				}
			default:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseResponse error = %v (token %v), want %v", err, got, tt.wantErr)
				}
			}
			if err != nil && got != nil {
				t.Fatalf("ParseResponse returned both a token and an error")
			}
		})
	}
}

func TestErrorSanitisesUpstreamText(t *testing.T) {
	long := strings.Repeat("é", 500)
	tests := []struct {
		name     string
		body     string
		wantDesc string
	}{
		{"newlines and escapes stripped", `{"error":"invalid_grant","error_description":"line1\nFAKE LOG LINE\u001b[31m\u202eevil"}`, "line1FAKE LOG LINE[31mevil"},
		{"truncated to 200 characters", `{"error":"invalid_grant","error_description":"` + long + `"}`, strings.Repeat("é", 200)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := exchange.ParseResponse(400, ctJSON, []byte(tt.body), parseNow)
			var oe *exchange.Error
			if !errors.As(err, &oe) {
				t.Fatalf("error = %v, want *Error", err)
			}
			if oe.Description != tt.wantDesc {
				t.Fatalf("Description = %q, want %q", oe.Description, tt.wantDesc)
			}
			if strings.ContainsFunc(err.Error(), unicode.IsControl) {
				t.Fatalf("Error() holds control characters: %q", err.Error())
			}
		})
	}
}

func TestErrorDoesNotEchoBody(t *testing.T) {
	const marker = "BODY-MARKER-7f3a"
	bodies := []struct {
		name        string
		status      int
		contentType string
		body        string
	}{
		{"500 html", 500, "text/html", "<html>" + marker + "</html>"},
		{"400 json without error", 400, ctJSON, `{"detail":"` + marker + `"}`},
		{"200 garbage", 200, "text/html", marker},
		{"200 invalid json", 200, ctJSON, `{"x":"` + marker},
		{"200 bad token type", 200, ctJSON, `{"access_token":"` + marker + `","token_type":"mac"}`},
		{"200 access token not a string", 200, ctJSON, `{"access_token":["` + marker + `"],"token_type":"bearer"}`},
	}
	for _, tt := range bodies {
		t.Run(tt.name, func(t *testing.T) {
			_, err := exchange.ParseResponse(tt.status, tt.contentType, []byte(tt.body), parseNow)
			if err == nil {
				t.Fatal("ParseResponse succeeded, want an error")
			}
			if strings.Contains(err.Error(), marker) {
				t.Fatalf("error %q echoes the response body", err)
			}
		})
	}
}

func TestTokenFormattingRedacts(t *testing.T) {
	tok := exchange.Token{
		AccessToken: "at-secret-1", TokenType: "Bearer", RefreshToken: "rt-secret-2", IDToken: "id-secret-3",
		Extra: map[string]any{"authed_user": map[string]any{"access_token": "xoxp-secret-4"}},
	}
	for _, s := range []string{tok.String(), tok.GoString(), tok.LogValue().String()} {
		for _, secretValue := range []string{"at-secret-1", "rt-secret-2", "id-secret-3", "xoxp-secret-4"} {
			if strings.Contains(s, secretValue) {
				t.Errorf("formatted token %q shows %q", s, secretValue)
			}
		}
	}
}

func FuzzParseResponse(f *testing.F) {
	seeds := []struct {
		status int
		ct     string
		body   string
	}{
		{200, ctJSON, `{"access_token":"a","token_type":"Bearer","expires_in":3599,"refresh_token":"r","id_token":"i"}`},
		{200, ctForm, "access_token=a&token_type=bearer&scope=repo%2Cgist"},
		{200, "text/plain", "access_token=a&token_type=bearer&expires_in=28800"},
		{200, "", `{"access_token":"a","token_type":"bearer","expires_in":"12.5"}`},
		{200, ctJSON, `{"error":"invalid_grant","error_description":"x"}`},
		{400, ctJSON, `{"error":{"message":"m","type":"OAuthException","code":1}}`},
		{500, "text/html", "<html></html>"},
		{302, "", ""},
		{200, ctJSON, `{"access_token":"a","token_type":"bearer","authed_user":{"access_token":"b"}}`},
		{200, "text/plain", "a;b=c&%zz"},
		{200, "application/json; charset", "\x00\xff{"},
		{0, "multipart/form-data; boundary=x", "access_token="},
	}
	for _, s := range seeds {
		f.Add(s.status, s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte) {
		tok, err := exchange.ParseResponse(status, contentType, body, parseNow)
		if err != nil {
			if tok != nil {
				t.Fatal("token and error both returned")
			}
			var oe *exchange.Error
			if errors.As(err, &oe) {
				if utf8.RuneCountInString(oe.Description) > 200 {
					t.Fatalf("description of %d runes", utf8.RuneCountInString(oe.Description))
				}
				for _, s := range []string{oe.Code, oe.Description, oe.URI} {
					if strings.ContainsFunc(s, unicode.IsControl) {
						t.Fatalf("control character kept in %q", s)
					}
				}
			}
			if exchange.Classify(err) == exchange.ClassNone {
				t.Fatalf("error %v classified as none", err)
			}
			return
		}
		if status < 200 || status > 299 {
			t.Fatalf("success for HTTP %d", status)
		}
		if tok.AccessToken == "" || !strings.EqualFold(tok.TokenType, "bearer") {
			t.Fatalf("success without bearer access token: %v", tok)
		}
		if tok.ExpiresIn < 0 || tok.ExpiresIn > 10*365*24*3600 {
			t.Fatalf("ExpiresIn %d out of range", tok.ExpiresIn)
		}
		if (tok.ExpiresIn == 0) != tok.Expiry.IsZero() {
			t.Fatalf("ExpiresIn %d but Expiry %v", tok.ExpiresIn, tok.Expiry)
		}
		if tok.ExpiresIn != 0 && !tok.Expiry.Equal(after(tok.ExpiresIn)) {
			t.Fatalf("Expiry %v does not match ExpiresIn %d", tok.Expiry, tok.ExpiresIn)
		}
	})
}

func BenchmarkParseResponse(b *testing.B) {
	body := []byte(`{"access_token":"ya29.a0AfB_byC3kX9LqYzGm8n2","expires_in":3599,` +
		`"refresh_token":"1//0gL3fQ7rN2xYz","scope":"openid https://www.googleapis.com/auth/userinfo.email",` +
		`"token_type":"Bearer","id_token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := exchange.ParseResponse(200, ctJSON, body, parseNow); err != nil {
			b.Fatal(err)
		}
	}
}
