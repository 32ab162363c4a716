package broker_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
	"github.com/dromos-dev/dromos/internal/vault"
)

// activeFor runs a consent for clientName through the callback and
// returns the now active connection's id.
func activeFor(t *testing.T, h *harness, clientName string) string {
	t.Helper()
	var c consentResp
	if st := h.do("POST", "/auth/consent-spec", map[string]any{"workspace_id": "ws-1", "user_id": "u-1",
		"client_name": clientName, "provider_name": "fake", "return_url": returnURL}, &c); st != http.StatusOK {
		t.Fatalf("consent: %d", st)
	}
	h.visitStart(c.AuthURL)
	if resp := h.callback(url.Values{"state": {c.State}, "code": {"c1"}}); resp.StatusCode != http.StatusFound {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	return c.ConnectionID
}

// A database writer hands agent-a's connection to agent-b by editing its
// client_name (or its user, workspace or provider). The token is sealed
// with those columns: after the edit nobody gets it, and the broker sends
// no refresh to any provider for it.
func TestDatabaseOwnerEditLeavesTokenSealed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, f := setupFake(t, dbURL)
		ctx := context.Background()
		edits := map[string]func(*storage.Connection) string{
			"client_name":  func(c *storage.Connection) string { c.ClientName = "agent-b"; return "agent-b" },
			"user_id":      func(c *storage.Connection) string { c.UserID = "u-2"; return "agent-a" },
			"workspace_id": func(c *storage.Connection) string { c.WorkspaceID = "ws-2"; return "agent-a" },
		}
		for name, edit := range edits {
			t.Run(name, func(t *testing.T) {
				id := activeFor(t, h, "agent-a")
				var tok map[string]any
				if st := h.do("GET", "/connections/"+id+"/token?client_name=agent-a", nil, &tok); st != http.StatusOK {
					t.Fatalf("owner's token read before the edit: %d %v", st, tok)
				}
				var reader string
				if _, err := h.store.UpdateConnection(ctx, id, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
					reader = edit(&c)
					return c, storage.TokenChange{}, nil
				}); err != nil {
					t.Fatal(err)
				}
				calls := f.calls.Load()
				for _, req := range []struct{ method, path string }{
					{"GET", "/connections/" + id + "/token?client_name=" + reader},
					{"POST", "/connections/" + id + "/refresh?client_name=" + reader},
				} {
					var body map[string]any
					st := h.do(req.method, req.path, nil, &body)
					if st == http.StatusOK || body["access_token"] != nil {
						t.Fatalf("%s %s after the edit: %d %v; want no token", req.method, req.path, st, body)
					}
				}
				if n := f.calls.Load(); n != calls {
					t.Fatalf("the provider got %d calls after the edit, want none", n-calls)
				}
				if strings.Contains(h.logs.String(), "fake-access-c1") {
					t.Fatal("token in logs")
				}
			})
		}
	})
}

// Tokens written before the owner binding (additional data: the
// connection id only, aad_version 1) are still served, and the next
// refresh seals them bound to their owner.
func TestLegacyTokenRowsKeepWorkingAndUpgrade(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h, f := setupFake(t, dbURL)
		ctx := context.Background()
		id := activeFor(t, h, "agent-a")
		ring, err := vault.NewKeyring(encKey)
		if err != nil {
			t.Fatal(err)
		}
		legacy, err := ring.Seal([]byte(`{"access_token":"legacy-at","token_type":"Bearer","refresh_token":"legacy-rt"}`),
			tokenset.LegacyAAD(id))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.store.UpdateConnection(ctx, id, func(c storage.Connection, tok *storage.Token) (storage.Connection, storage.TokenChange, error) {
			t := *tok
			t.Ciphertext, t.AADVersion = legacy, tokenset.LegacyAADVersion
			return c, storage.TokenChange{Put: &t}, nil
		}); err != nil {
			t.Fatal(err)
		}
		var tok map[string]any
		if st := h.do("GET", "/connections/"+id+"/token?client_name=agent-a", nil, &tok); st != http.StatusOK || tok["access_token"] != "legacy-at" {
			t.Fatalf("legacy token read: %d %v", st, tok)
		}
		calls := f.calls.Load()
		if st := h.do("POST", "/connections/"+id+"/refresh?client_name=agent-a", nil, &tok); st != http.StatusOK {
			t.Fatalf("refresh of a legacy token: %d %v", st, tok)
		}
		if f.calls.Load() != calls+1 {
			t.Fatalf("provider calls %d, want one refresh", f.calls.Load()-calls)
		}
		row, err := h.store.GetToken(ctx, id)
		if err != nil || row.AADVersion != tokenset.AADVersion {
			t.Fatalf("token row after refresh: version %d (%v), want %d", row.AADVersion, err, tokenset.AADVersion)
		}
		if st := h.do("GET", "/connections/"+id+"/token?client_name=agent-a", nil, &tok); st != http.StatusOK || tok["access_token"] == "legacy-at" {
			t.Fatalf("token read after the upgrade: %d %v", st, tok)
		}
	})
}
