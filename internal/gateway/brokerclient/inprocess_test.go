package brokerclient

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/logging"
)

// overHTTP is what the client makes of err written by the broker as its
// HTTP answer: the split deployment's path.
func overHTTP(t *testing.T, op string, err error) error {
	t.Helper()
	rec := httptest.NewRecorder()
	httpapi.WriteError(rec, httptest.NewRequest("GET", "/connections/x/token", nil), logging.Discard(), err)
	return mapStatus(op, answer{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()})
}

// TestFromBrokerMatchesHTTP: an agent sees the same status, code, message
// and Retry-After whether the broker's error reached the gateway in
// process or as an HTTP answer.
func TestFromBrokerMatchesHTTP(t *testing.T) {
	for name, err := range map[string]error{
		"not found":          httpapi.NotFound("connection"),
		"not ready":          httpapi.Conflict(httpapi.CodeNotReady, "connection is pending"),
		"reauth":             httpapi.Conflict(httpapi.CodeReauthRequired, "the user must connect again"),
		"bad request":        httpapi.BadRequest("auto_refresh must be true or false"),
		"rate limited":       &httpapi.Error{Status: 429, Code: httpapi.CodeRateLimited, Message: "slow down", RetryAfter: 1500 * time.Millisecond},
		"unavailable":        httpapi.Unavailable("database unavailable", 2*time.Second, errors.New("dial tcp: refused")),
		"unavailable, long":  httpapi.Unavailable("busy", 3*time.Hour, nil),
		"provider error":     httpapi.BadGateway(httpapi.CodeProviderError, "the provider refused the refresh", errors.New("500")),
		"other bad gateway":  httpapi.BadGateway("upstream", "something upstream", nil),
		"owner required":     &httpapi.Error{Status: 403, Code: httpapi.CodeOwnerRequired, Message: "name the owner"},
		"unauthorized":       httpapi.Unauthorized("missing or invalid API key"),
		"not implemented":    &httpapi.Error{Status: 501, Code: httpapi.CodeNotImplemented, Message: "MCP connections are not enabled"},
		"internal":           errors.New("sql: scan failed"),
		"control characters": httpapi.BadRequest("line\none\ttab"),
		"long message":       httpapi.BadRequest("%s", strings.Repeat("é", 400)),
		"odd code":           &httpapi.Error{Status: 409, Code: "Not-Plain", Message: "x"},
	} {
		t.Run(name, func(t *testing.T) {
			got, _ := httpapi.As(FromBroker(OpGetToken, err))
			want, _ := httpapi.As(overHTTP(t, OpGetToken, err))
			if got == nil || want == nil {
				t.Fatalf("not httpapi errors: %v / %v", got, want)
			}
			if got.Status != want.Status || got.Code != want.Code || got.Message != want.Message || got.RetryAfter != want.RetryAfter {
				t.Errorf("in process %d %s %q %v, over HTTP %d %s %q %v", got.Status, got.Code, got.Message, got.RetryAfter,
					want.Status, want.Code, want.Message, want.RetryAfter)
			}
		})
	}
	if FromBroker(OpGetToken, nil) != nil {
		t.Error("nil became an error")
	}
}

// TestTokenFromMembersMatchesHTTP: the broker's token members read in
// process give the Token the JSON answer gives.
func TestTokenFromMembersMatchesHTTP(t *testing.T) {
	for name, m := range map[string]map[string]any{
		"plain": {"access_token": "at", "token_type": "Bearer", "scope": "read", "provider": "fake",
			"expires_at_source": "expires_in", "expires_in": int64(3599), "expires_at": "2030-01-01T01:00:00Z"},
		"no expiry, id_token": {"access_token": "at", "token_type": "Bearer", "scope": "", "provider": "p",
			"expires_at_source": "", "id_token": "h.p.s"},
		"extras": {"access_token": "at", "token_type": "bearer", "provider": "slack", "scope": "a b",
			"team": map[string]any{"id": "T1", "name": "<A&B>"}, "ok": true, "n": 1.5, "list": []any{"x", nil}},
		"nested refresh token dropped": {"access_token": "at", "token_type": "Bearer",
			"authed_user": map[string]any{"id": "U1", "access_token": "xoxp", "refresh_token": "secret-rt"}},
		"exposed refresh token kept": {"access_token": "at", "token_type": "Bearer", "refresh_token": "rt",
			"authed_user": map[string]any{"refresh_token": "nested-rt"}},
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			httpapi.WriteJSONObject(rec, http.StatusOK, m)
			raw, err := decodeMembers(rec.Body.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			want, err := parseToken(OpGetToken, raw)
			if err != nil {
				t.Fatal(err)
			}
			got, err := TokenFromMembers(OpGetToken, m)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Extras) != len(want.Extras) {
				t.Fatalf("extras %v, over HTTP %v", got.Extras, want.Extras)
			}
			for k, v := range want.Extras {
				if string(got.Extras[k]) != string(v) {
					t.Errorf("extra %s: %s, over HTTP %s", k, got.Extras[k], v)
				}
			}
			got.Extras, want.Extras = nil, nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("in process %+v\nover HTTP %+v", got, want)
			}
		})
	}
	for name, m := range map[string]map[string]any{
		"no access token":   {"token_type": "Bearer"},
		"empty token type":  {"access_token": "SECRET-AT", "token_type": ""},
		"number as string":  {"access_token": "SECRET-AT", "token_type": "Bearer", "scope": 5},
		"bad expires_at":    {"access_token": "SECRET-AT", "token_type": "Bearer", "expires_at": "SECRET-tomorrow"},
		"bad expires_in":    {"access_token": "SECRET-AT", "token_type": "Bearer", "expires_in": "soon"},
		"unencodable extra": {"access_token": "SECRET-AT", "token_type": "Bearer", "f": func() {}},
	} {
		_, err := TokenFromMembers(OpGetToken, m)
		if e, ok := httpapi.As(err); !ok || e.Code != CodeBrokerError || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
