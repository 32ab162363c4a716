package broker_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/storage"
)

// Control characters (C0, DEL, C1) are refused at the broker's input, where
// operators' terminals would later show them: consent fields and every
// free-text field of a provider profile. Nothing is stored.
func TestControlCharactersRefusedAtInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL)
		p := newFakeProvider(t)
		profile := func(change func(map[string]any)) map[string]any {
			m := map[string]any{"name": "fake", "auth_url": p.srv.URL + "/authorize", "token_url": p.srv.URL + "/token",
				"client_id": "cid", "client_secret": "csecret"}
			change(m)
			return m
		}
		for _, tc := range []struct {
			name   string
			change func(map[string]any)
			msg    string
		}{
			{"display name with escape", func(m map[string]any) { m["display_name"] = "Fake\x1b]0;owned\x07" },
				"display_name must not contain control characters (U+001B at byte 4)"},
			{"display name with C1", func(m map[string]any) { m["display_name"] = "Fake\u009b2J" }, "display_name must not contain control characters (U+009B"},
			{"client id with newline", func(m map[string]any) { m["client_id"] = "cid\nX" }, "client_id must not contain control characters"},
			{"scope with DEL", func(m map[string]any) { m["scopes"] = []string{"ok", "b\x7f"} }, "scopes[1] must not contain control characters"},
			{"auth param value", func(m map[string]any) { m["auth_params"] = map[string]string{"hd": "a\u0085"} }, `auth_params["hd"] must not contain control characters`},
			{"token url with C1", func(m map[string]any) { m["token_url"] = p.srv.URL + "/token\u009b" }, "token_url must not contain control characters"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var env envelope
				st := h.do("POST", "/providers", map[string]any{"profile": profile(tc.change)}, &env)
				if st != http.StatusBadRequest || !strings.Contains(env.Message, tc.msg) {
					t.Fatalf("register: %d %+v, want 400 with %q", st, env, tc.msg)
				}
			})
		}
		if ps, err := h.store.ListProviders(t.Context()); err != nil || len(ps) != 0 {
			t.Fatalf("refused profiles stored %d providers (%v)", len(ps), err)
		}

		h.registerProvider(profile(func(map[string]any) {}))
		id := h.registerProvider(profile(func(m map[string]any) { m["name"] = "other" }))
		var env envelope
		if st := h.do("PUT", "/providers/"+id, map[string]any{"profile": profile(func(m map[string]any) {
			m["name"], m["display_name"] = "other", "x\u009d"
		})}, &env); st != http.StatusBadRequest || !strings.Contains(env.Message, "display_name must not contain control characters") {
			t.Fatalf("update: %d %+v", st, env)
		}
		before, err := h.store.GetProvider(t.Context(), id)
		if err != nil || before.UpdatedAt != before.CreatedAt || strings.Contains(string(before.Config), `\u009d`) {
			t.Fatalf("update changed the provider: %v %s", err, before.Config)
		}

		for _, tc := range []struct{ field, value, msg string }{
			{"user_id", "alice\u009b31m", "user_id must not contain control characters (U+009B at byte 5)"},
			{"user_id", "alice\x1b[2J", "user_id must not contain control characters (U+001B at byte 5)"},
			{"client_name", "agent\x07", "client_name must not contain control characters"},
			{"workspace_id", "ws\u0080", "workspace_id must not contain control characters"},
			{"provider_name", "fake\t", "provider_name must not contain control characters"},
			{"return_url", returnURL + "\u0085", "return_url must not contain control characters"},
		} {
			body := map[string]any{"workspace_id": "w", "user_id": "u", "provider_name": "fake", "scopes": []string{"read"},
				"return_url": returnURL}
			body[tc.field] = tc.value
			var env envelope
			if st := h.do("POST", "/auth/consent-spec", body, &env); st != http.StatusBadRequest || !strings.Contains(env.Message, tc.msg) {
				t.Fatalf("consent with %s %q: %d %+v, want 400 with %q", tc.field, tc.value, st, env, tc.msg)
			}
		}
		if cs, err := h.store.ListConnections(t.Context(), storage.ConnectionFilter{}); err != nil || len(cs) != 0 {
			t.Fatalf("refused consents stored %d connections (%v)", len(cs), err)
		}
	})
}
