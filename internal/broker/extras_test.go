package broker_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/broker"
)

// slackAnswer is shaped like Slack's oauth.v2.access answer with token
// rotation and a user scope: the bot token at the top, the user's token,
// with its own refresh token, under authed_user. installations is not
// Slack's: it puts a refresh token in an object inside an array too.
const slackAnswer = `{"ok":true,"access_token":"xoxb-bot","token_type":"bot","scope":"chat:write","expires_in":43200,
"refresh_token":"xoxe-1-bot-rt","bot_user_id":"U1","team":{"id":"T1","name":"Acme"},
"authed_user":{"id":"U2","scope":"search:read","access_token":"xoxp-user","token_type":"user","refresh_token":"xoxe-1-user-rt","expires_in":43200},
"installations":[{"id":"I1","refresh_token":"xoxe-1-array-rt","grants":[{"refresh_token":"xoxe-1-deep-rt","n":1}]},"plain",7]}`

// setupSlack registers a provider answering slackAnswer to every token
// request and returns an active connection to it.
func setupSlack(t *testing.T, dbURL string, tweak ...func(*broker.Config)) (*harness, string) {
	t.Helper()
	h := newHarness(t, dbURL, tweak...)
	f := newFakeProvider(t)
	f.setResponse(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(slackAnswer))
	})
	prof := f.profile("slackbot")
	prof["quirks"] = []string{"comma_scopes", "token_type_any"}
	prof["auth_params"] = map[string]string{"user_scope": "search:read"}
	h.registerProvider(prof)
	return h, connect(t, h, "slackbot")
}

// answer reads the token (GET) or forces a refresh (POST) and returns the
// raw answer.
func answer(t *testing.T, h *harness, method, id string) []byte {
	t.Helper()
	path := "/connections/" + id + "/token"
	if method == http.MethodPost {
		path = "/connections/" + id + "/refresh"
	}
	var raw json.RawMessage
	if st := h.do(method, path, nil, &raw); st != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, st, raw)
	}
	return raw
}

// A refresh token nested in a provider extra is a refresh token all the
// same: without ExposeRefreshToken none reaches the agent, at any depth,
// on a read or after a refresh, while the rest of the extras is intact.
func TestNestedRefreshTokensNotGivenToAgents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, id := setupSlack(t, dbURL)
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodGet} {
			raw := answer(t, h, method, id)
			if strings.Contains(string(raw), "refresh_token") || strings.Contains(string(raw), "xoxe-") {
				t.Fatalf("%s: a refresh token reached the agent: %s", method, raw)
			}
			var got map[string]any
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if got["access_token"] != "xoxb-bot" || got["bot_user_id"] != "U1" {
				t.Fatalf("%s: top level changed: %s", method, raw)
			}
			wantUser := map[string]any{"id": "U2", "scope": "search:read", "access_token": "xoxp-user", "token_type": "user", "expires_in": 43200.0}
			if !reflect.DeepEqual(got["authed_user"], wantUser) {
				t.Fatalf("%s: authed_user = %v, want %v", method, got["authed_user"], wantUser)
			}
			if want := map[string]any{"id": "T1", "name": "Acme"}; !reflect.DeepEqual(got["team"], want) {
				t.Fatalf("%s: team = %v", method, got["team"])
			}
			wantArray := []any{map[string]any{"id": "I1", "grants": []any{map[string]any{"n": 1.0}}}, "plain", 7.0}
			if !reflect.DeepEqual(got["installations"], wantArray) {
				t.Fatalf("%s: installations = %v, want %v", method, got["installations"], wantArray)
			}
		}
	})
}

// With ExposeRefreshToken on, the operator asked for refresh tokens: the
// top-level one and the nested ones are all in the answer.
func TestNestedRefreshTokensExposedWhenConfigured(t *testing.T) {
	h, id := setupSlack(t, sqliteURL(t), func(c *broker.Config) { c.ExposeRefreshToken = true })
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		var got struct {
			RefreshToken string `json:"refresh_token"`
			AuthedUser   struct {
				AccessToken  string `json:"access_token"`
				RefreshToken string `json:"refresh_token"`
			} `json:"authed_user"`
			Installations []json.RawMessage `json:"installations"`
		}
		if err := json.Unmarshal(answer(t, h, method, id), &got); err != nil {
			t.Fatal(err)
		}
		if got.RefreshToken != "xoxe-1-bot-rt" || got.AuthedUser.RefreshToken != "xoxe-1-user-rt" ||
			got.AuthedUser.AccessToken != "xoxp-user" || len(got.Installations) != 3 ||
			!strings.Contains(string(got.Installations[0]), `"xoxe-1-array-rt"`) ||
			!strings.Contains(string(got.Installations[0]), `"xoxe-1-deep-rt"`) {
			t.Fatalf("%s: %+v", method, got)
		}
	}
}
