package registry_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestAllowedScopesStoredAndWarned: allowed_scopes is kept with the
// profile and shown back; a provider saved without it logs a warning,
// one saved with it does not; a malformed list is refused.
func TestAllowedScopesStoredAndWarned(t *testing.T) {
	const warning = "provider has no allowed_scopes"
	f := newFixture(t, false)
	if st, body := f.do(t, "POST", "/providers", map[string]any{"profile": staticProfile("open")}); st != http.StatusCreated {
		t.Fatalf("create: %d %v", st, body)
	}
	if logs := f.logs.String(); !strings.Contains(logs, warning) || !strings.Contains(logs, "provider=open") {
		t.Fatalf("no warning for a provider without allowed_scopes: %q", logs)
	}

	f2 := newFixture(t, false)
	prof := staticProfile("closed")
	prof["allowed_scopes"] = []string{"read", "write*"}
	st, body := f2.do(t, "POST", "/providers", map[string]any{"profile": prof})
	if st != http.StatusCreated {
		t.Fatalf("create: %d %v", st, body)
	}
	if logs := f2.logs.String(); strings.Contains(logs, warning) {
		t.Fatalf("warned for a provider with allowed_scopes: %q", logs)
	}
	got, err := f2.reg.Lookup(t.Context(), body["id"].(string), "")
	if err != nil || !slices.Equal(got.Profile.AllowedScopes, []string{"read", "write*"}) {
		t.Fatalf("stored allowed_scopes %q (%v)", got.Profile.AllowedScopes, err)
	}
	if _, listed := f2.do(t, "GET", "/providers", nil); !strings.Contains(toJSON(t, listed), `"allowed_scopes":["read","write*"]`) {
		t.Fatalf("GET /providers does not show allowed_scopes: %v", listed)
	}

	bad := staticProfile("bad")
	bad["allowed_scopes"] = []string{"re\u0085ad", "*"}
	if st, body := f2.do(t, "POST", "/providers", map[string]any{"profile": bad}); st != http.StatusBadRequest ||
		!strings.Contains(toJSON(t, body), "allowed_scopes[0]") || !strings.Contains(toJSON(t, body), "allowed_scopes[1]") {
		t.Fatalf("malformed allowed_scopes: %d %v", st, body)
	}
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
