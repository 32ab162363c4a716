package webhook

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// referenceVerifier runs test/webhooks/verify.mjs, which checks a message
// with the npm package standardwebhooks (the specification's reference
// library). It skips the test when node or the installed package is
// missing; CI installs it with npm ci before the tests.
func referenceVerifier(t *testing.T) func(secret string, headers map[string]string, body []byte) (exitCode int, out string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found: the cross-check against the standardwebhooks npm package needs Node.js")
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "test", "webhooks"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks", "package.json")); err != nil {
		t.Skip("test/webhooks/node_modules missing: run (cd test/webhooks && npm ci) to cross-check with standardwebhooks")
	}
	return func(secret string, headers map[string]string, body []byte) (int, string) {
		t.Helper()
		in, err := json.Marshal(map[string]any{
			"secret":      secret,
			"headers":     headers,
			"body_base64": base64.StdEncoding.EncodeToString(body),
		})
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(node, filepath.Join(dir, "verify.mjs"))
		cmd.Dir = dir
		cmd.Stdin = bytes.NewReader(in)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err = cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return 0, strings.TrimSpace(stdout.String())
		case errors.As(err, &exit):
			return exit.ExitCode(), strings.TrimSpace(stderr.String())
		default:
			t.Fatalf("running verify.mjs: %v", err)
			return -1, ""
		}
	}
}

func headerMap(t *testing.T, id string, ts time.Time, body []byte, secrets ...Secret) map[string]string {
	t.Helper()
	h, err := Sign(id, ts, body, secrets...)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		HeaderID:        h.Get(HeaderID),
		HeaderTimestamp: h.Get(HeaderTimestamp),
		HeaderSignature: h.Get(HeaderSignature),
	}
}

func TestReferenceLibraryVerifiesSignedMessages(t *testing.T) {
	verify := referenceVerifier(t)
	var secrets []Secret
	for range 3 {
		s, err := NewSecret(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, s)
	}
	outsider, err := NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The library checks timestamps against its own clock, so sign now.
	now := time.Now()
	for _, tc := range []struct {
		name    string
		ev      Event
		secrets []Secret
	}{
		{"one secret", Event{Type: ConnectionActive, Timestamp: now, Data: Connection{
			ConnectionID: "c-1", WorkspaceID: "default", ClientName: "agent-a", UserID: "u-42",
			ProviderName: "google", Status: "active", Scopes: []string{"openid", "email"}, CreatedAt: now,
		}}, secrets[:1]},
		{"two secrets during rotation", Event{Type: ConnectionReauthRequired, Timestamp: now, Data: Connection{
			ConnectionID: "c-2", UserID: "u-7", ProviderName: "github", Status: "expired", Reason: "invalid_grant",
		}}, secrets[:2]},
		{"three secrets, unicode body", Event{Type: ConnectionScopesChanged, Timestamp: now, Data: Connection{
			ConnectionID: "c-3", ClientName: "agent-ü", UserID: "Zoë 🙂 ユーザー", ProviderName: "microsoft",
			Status: "active", Scopes: []string{"Files.Read", "https://graph.microsoft.com/Mail.Read"},
		}}, secrets},
		{"deleted", Event{Type: ConnectionDeleted, Timestamp: now, Data: Connection{
			ConnectionID: "c-4", Status: "revoked", Reason: "deleted",
		}}, secrets[1:2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := Encode(tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			id, err := NewMessageID(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			headers := headerMap(t, id, now, body, tc.secrets...)
			if n := len(strings.Fields(headers[HeaderSignature])); n != len(tc.secrets) {
				t.Fatalf("%d signatures for %d secrets", n, len(tc.secrets))
			}
			// Every valid secret verifies on its own: a receiver holds
			// just one of them.
			for i, s := range tc.secrets {
				if code, out := verify(s.Reveal(), headers, body); code != 0 || out != string(tc.ev.Type) {
					t.Errorf("secret %d: standardwebhooks exit %d: %s", i, code, out)
				}
			}
			// A secret the message was not signed with is refused.
			if code, out := verify(outsider.Reveal(), headers, body); code != 1 {
				t.Errorf("unrelated secret: standardwebhooks exit %d, want 1 (rejected): %s", code, out)
			}
			// A tampered body is refused, by the library's verification
			// (exit 1), not by a crash.
			tampered := bytes.Replace(body, []byte(tc.ev.Data.ConnectionID), []byte("c-9"), 1)
			if code, out := verify(tc.secrets[0].Reveal(), headers, tampered); code != 1 || !strings.Contains(out, "No matching signature") {
				t.Errorf("tampered body: standardwebhooks exit %d (%s), want 1 and no matching signature", code, out)
			}
		})
	}
}

// The library must also refuse what our signer produces with a stale
// timestamp, so the tolerance in the SDK matches the reference.
func TestReferenceLibraryRefusesStaleMessage(t *testing.T) {
	verify := referenceVerifier(t)
	s, err := NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	body, err := Encode(Event{Type: ConnectionFailed, Timestamp: time.Now(), Data: Connection{ConnectionID: "c-1", Status: "failed", Reason: "access_denied"}})
	if err != nil {
		t.Fatal(err)
	}
	headers := headerMap(t, "msg_stale", time.Now().Add(-10*time.Minute), body, s)
	if code, out := verify(s.Reveal(), headers, body); code != 1 || !strings.Contains(out, "too old") {
		t.Fatalf("stale message: standardwebhooks exit %d (%s), want 1 and too old", code, out)
	}
}
