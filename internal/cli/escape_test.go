package cli_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode"
)

// hostile is text an agent, a user or a provider could have put in the
// broker's data: screen clear, window title, a C1 CSI, a forged row.
const hostile = "x\x1b[2J\x1b]0;owned\x07\u009b31m\r\nFAKE\tROW\u202e"

// A hostile broker answer (or hostile data stored behind an honest broker)
// must not reach the operator's terminal as control sequences.
func TestCLIEscapesEverythingItPrints(t *testing.T) {
	h := jsonEscape(hostile)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /providers", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"providers":[{"id":"p1` + h + `","name":"gh` + h + `","display_name":"GitHub` + h + `",
			"auth_url":"https://github.com/` + h + `","client_id":"c","has_client_secret":true,"scopes":["repo` + h + `"]}]}`))
	})
	mux.HandleFunc("GET /providers/by-name/{name}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"id":"p1","name":"gh` + h + `","display_name":"GitHub` + h + `","aliases":["a` + h + `"],
			"auth_url":"https://github.com/x","client_id":"c` + h + `","quirks":["q` + h + `"]}`))
	})
	mux.HandleFunc("GET /catalog", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"templates":[{"name":"t` + h + `","display_name":"T` + h + `","template_params":[{"name":"p` + h + `"}]}]}`))
	})
	conn := `{"connection_id":"c1` + h + `","status":"active","status_reason":"r` + h + `","provider":"gh` + h + `",
		"user_id":"u` + h + `","client_name":"agent` + h + `","workspace_id":"w` + h + `","scopes":["s` + h + `"],
		"subject":"sub` + h + `","email":"e` + h + `","metadata":{"k` + h + `":"v` + h + `"},"provider_data":{"pk":"pv` + h + `"}}`
	mux.HandleFunc("GET /connections", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"connections":[` + conn + `]}`))
	})
	mux.HandleFunc("GET /connections/{id}", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(conn)) })
	mux.HandleFunc("GET /connections/{id}/token", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"access_token":"tok` + h + `abcdefgh","token_type":"bearer` + h + `","scope":"s` + h + `","provider":"gh` + h + `"}`))
	})
	mux.HandleFunc("DELETE /providers/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"code":"not_found","message":"nothing` + h + `"}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	env := []string{"DROMOS_BROKER_URL=" + srv.URL}
	for _, args := range [][]string{
		{"providers", "list"},
		{"providers", "show", "gh"},
		{"providers", "catalog"},
		{"providers", "remove", "gh"},
		{"connections", "list"},
		{"connections", "show", "c1"},
		{"token", "c1"},
		{"token", "c1", "--reveal"},
		{"connections", "delete", "c1\x1b[2J"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errOut, code := runCLI(t, env, args...)
			if code == 0 && out == "" {
				t.Fatal("printed nothing")
			}
			for name, s := range map[string]string{"stdout": out, "stderr": errOut} {
				for _, r := range s {
					if r != '\n' && !unicode.IsPrint(r) {
						t.Fatalf("exit %d: %s carries %U:\n%q", code, name, r, s)
					}
				}
				if strings.Contains(s, "\nFAKE") {
					t.Fatalf("%s has a forged line:\n%s", name, s)
				}
			}
		})
	}
}

func jsonEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0x202e {
			b.WriteString(`\u`)
			const hex = "0123456789abcdef"
			b.WriteByte(hex[r>>12&0xf])
			b.WriteByte(hex[r>>8&0xf])
			b.WriteByte(hex[r>>4&0xf])
			b.WriteByte(hex[r&0xf])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
