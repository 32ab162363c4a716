package webhook

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// The expected signatures below were computed outside Go with
//
//	printf '%s' "msg_vector1.1796396400.$BODY" |
//	  openssl dgst -sha256 -mac HMAC -macopt hexkey:$(printf '%s' "$KEY" | xxd -p -c 64) -binary | base64
const (
	vectorSecretA = "whsec_ZHJvbW9zIHdlYmhvb2sgdGVzdCB2ZWN0b3Iga2V5ISE=" // "dromos webhook test vector key!!"
	vectorSecretB = "whsec_YW5vdGhlciAyNC1ieXRlIHRlc3Qga2V5"             // "another 24-byte test key"
	vectorID      = "msg_vector1"
	vectorUnix    = 1796396400
	vectorBody    = `{"type":"connection.reauth_required","timestamp":"2026-12-04T15:00:00Z","data":{"connection_id":"c-1","user_id":"Zoë"}}`
	vectorSigA    = "v1,u1hygLQgNohAXCdSDUsEy5qVLP9x+7i0LfFbh6CJsgg="
	vectorSigB    = "v1,v6wQre1KKxwampmIqL3rD76iqE3R4tZJq1aQZNi+aJo="
)

func mustSecret(t *testing.T, s string) Secret {
	t.Helper()
	sec, err := ParseSecret(s)
	if err != nil {
		t.Fatalf("ParseSecret(%q): %v", s, err)
	}
	return sec
}

func TestSignMatchesOpenSSLVector(t *testing.T) {
	a, b := mustSecret(t, vectorSecretA), mustSecret(t, vectorSecretB)
	// Sub-second precision must not reach the signed timestamp.
	ts := time.Unix(vectorUnix, 999_000_000)
	h, err := Sign(vectorID, ts, []byte(vectorBody), a, b)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Get(HeaderID); got != vectorID {
		t.Errorf("webhook-id = %q", got)
	}
	if got := h.Get(HeaderTimestamp); got != "1796396400" {
		t.Errorf("webhook-timestamp = %q", got)
	}
	if got, want := h.Get(HeaderSignature), vectorSigA+" "+vectorSigB; got != want {
		t.Errorf("webhook-signature = %q, want %q", got, want)
	}
	if got := Signature(b, vectorID, ts, []byte(vectorBody)); got != vectorSigB {
		t.Errorf("Signature(B) = %q, want %q", got, vectorSigB)
	}
}

func TestSignatureCoversEveryPart(t *testing.T) {
	a := mustSecret(t, vectorSecretA)
	ts := time.Unix(vectorUnix, 0)
	base := Signature(a, vectorID, ts, []byte(vectorBody))
	for name, sig := range map[string]string{
		"other id":        Signature(a, "msg_vector2", ts, []byte(vectorBody)),
		"other timestamp": Signature(a, vectorID, ts.Add(time.Second), []byte(vectorBody)),
		"other body":      Signature(a, vectorID, ts, []byte(strings.Replace(vectorBody, "c-1", "c-2", 1))),
		"other secret":    Signature(mustSecret(t, vectorSecretB), vectorID, ts, []byte(vectorBody)),
	} {
		if sig == base {
			t.Errorf("%s: signature unchanged", name)
		}
	}
}

func TestSignRefuses(t *testing.T) {
	a := mustSecret(t, vectorSecretA)
	ts := time.Unix(vectorUnix, 0)
	for _, tc := range []struct {
		name    string
		id      string
		secrets []Secret
		want    error
	}{
		{"no secret", vectorID, nil, ErrNoSecret},
		{"only zero secrets", vectorID, []Secret{{}}, ErrNoSecret},
		{"empty id", "", []Secret{a}, ErrBadMessageID},
		{"dot in id", "msg_a.b", []Secret{a}, ErrBadMessageID},
		{"space in id", "msg a", []Secret{a}, ErrBadMessageID},
		{"newline in id", "msg_a\r\nx-evil: 1", []Secret{a}, ErrBadMessageID},
		{"long id", "msg_" + strings.Repeat("a", 200), []Secret{a}, ErrBadMessageID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := Sign(tc.id, ts, []byte("{}"), tc.secrets...)
			if !errors.Is(err, tc.want) || h != nil {
				t.Fatalf("Sign = %v, %v; want nil, %v", h, err, tc.want)
			}
		})
	}
}

func TestNewSecretRoundTrip(t *testing.T) {
	s1, err := NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	text := s1.Reveal()
	if !strings.HasPrefix(text, SecretPrefix) || text == s2.Reveal() {
		t.Fatalf("secrets %q and %q", text, s2.Reveal())
	}
	back, err := ParseSecret(text)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.key, s1.key) || len(back.key) != 32 {
		t.Fatalf("round trip lost the key (%d bytes)", len(back.key))
	}
	if _, err := NewSecret(iotest.ErrReader(errors.New("no entropy"))); err == nil {
		t.Fatal("NewSecret ignored a failing random source")
	}
}

func TestParseSecretRefuses(t *testing.T) {
	for name, s := range map[string]string{
		"empty":             "",
		"no prefix":         "ZHJvbW9zIHdlYmhvb2sgdGVzdCB2ZWN0b3Iga2V5ISE=",
		"other prefix":      "whsk_ZHJvbW9zIHdlYmhvb2sgdGVzdCB2ZWN0b3Iga2V5ISE=",
		"not base64":        "whsec_!!!!",
		"url alphabet":      "whsec_" + strings.Repeat("-", 32),
		"unpadded":          "whsec_ZHJvbW9zIHdlYmhvb2sgdGVzdCB2ZWN0b3Iga2V5ISE",
		"too short (16 B)":  "whsec_MDEyMzQ1Njc4OWFiY2RlZg==",
		"too long (65 B)":   SecretPrefix + base64.StdEncoding.EncodeToString(make([]byte, 65)),
		"longest (64 B) ok": SecretPrefix + base64.StdEncoding.EncodeToString(make([]byte, 64)),
	} {
		if strings.HasSuffix(name, " ok") {
			if _, err := ParseSecret(s); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if _, err := ParseSecret(s); !errors.Is(err, ErrBadSecret) {
			t.Errorf("%s: ParseSecret(%q) = %v, want ErrBadSecret", name, s, err)
		}
	}
}

func TestSecretRedacts(t *testing.T) {
	s := mustSecret(t, vectorSecretA)
	enc := strings.TrimPrefix(vectorSecretA, SecretPrefix)
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "secret", s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), logged.String()} {
		if strings.Contains(out, enc) || strings.Contains(out, "dromos webhook") {
			t.Errorf("secret leaked: %s", out)
		}
	}
}

func TestNewMessageID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id, err := NewMessageID(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(id, MessageIDPrefix) || checkMessageID(id) != nil || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	if _, err := NewMessageID(iotest.ErrReader(errors.New("no entropy"))); err == nil {
		t.Fatal("NewMessageID ignored a failing random source")
	}
}

func TestEncode(t *testing.T) {
	at := time.Date(2026, 12, 4, 16, 0, 0, 0, time.FixedZone("CET", 3600))
	body, err := Encode(Event{
		Type:      ConnectionScopesChanged,
		Timestamp: at,
		Data: Connection{
			ConnectionID: "c-1", WorkspaceID: "default", ClientName: "agent-a",
			UserID: "u-42", ProviderName: "google", Status: "active",
			CreatedAt: at.Add(-time.Hour),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"connection.scopes_changed","timestamp":"2026-12-04T15:00:00Z","data":{` +
		`"connection_id":"c-1","workspace_id":"default","client_name":"agent-a","user_id":"u-42",` +
		`"provider_name":"google","status":"active","scopes":[],"created_at":"2026-12-04T14:00:00Z"}}`
	if string(body) != want {
		t.Fatalf("body\n got %s\nwant %s", body, want)
	}
	var back Event
	if err := json.Unmarshal(body, &back); err != nil || back.Type != ConnectionScopesChanged {
		t.Fatalf("decode: %v %+v", err, back)
	}
}

func TestEncodeRefuses(t *testing.T) {
	ok := Event{Type: ConnectionActive, Timestamp: time.Unix(vectorUnix, 0), Data: Connection{ConnectionID: "c-1"}}
	for name, mutate := range map[string]func(*Event){
		"unknown type":  func(e *Event) { e.Type = "connection.exploded" },
		"empty type":    func(e *Event) { e.Type = "" },
		"no timestamp":  func(e *Event) { e.Timestamp = time.Time{} },
		"no connection": func(e *Event) { e.Data.ConnectionID = "" },
	} {
		ev := ok
		mutate(&ev)
		if body, err := Encode(ev); err == nil {
			t.Errorf("%s: Encode = %s, want an error", name, body)
		}
	}
	if _, err := Encode(ok); err != nil {
		t.Fatalf("valid event refused: %v", err)
	}
}

func TestEventTypes(t *testing.T) {
	want := []string{"connection.active", "connection.failed", "connection.reauth_required",
		"connection.recovered", "connection.deleted", "connection.scopes_changed"}
	got := EventTypes()
	if len(got) != len(want) {
		t.Fatalf("EventTypes = %v", got)
	}
	for i, w := range want {
		if string(got[i]) != w || !got[i].Valid() {
			t.Errorf("EventTypes[%d] = %q, want %q", i, got[i], w)
		}
	}
}

// The payload must never be able to carry credentials: no field of
// Connection may be named like one.
func TestConnectionHasNoSecretFields(t *testing.T) {
	body, err := json.Marshal(Connection{Scopes: []string{}, CreatedAt: time.Unix(1, 0), UpdatedAt: time.Unix(1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatal(err)
	}
	for name := range fields {
		for _, bad := range []string{"token", "code", "state", "secret", "verifier", "password", "key"} {
			if strings.Contains(name, bad) {
				t.Errorf("payload field %q looks like a credential", name)
			}
		}
	}
}
