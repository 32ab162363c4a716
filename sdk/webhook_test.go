package sdk

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A message signed outside Go (openssl dgst -sha256 -mac HMAC, see
// internal/webhook's tests) with two secrets.
const (
	whSecretA = "whsec_ZHJvbW9zIHdlYmhvb2sgdGVzdCB2ZWN0b3Iga2V5ISE="
	whSecretB = "whsec_YW5vdGhlciAyNC1ieXRlIHRlc3Qga2V5"
	whID      = "msg_vector1"
	whUnix    = 1796396400
	whBody    = `{"type":"connection.reauth_required","timestamp":"2026-12-04T15:00:00Z","data":{"connection_id":"c-1","user_id":"Zoë"}}`
	whSigA    = "v1,u1hygLQgNohAXCdSDUsEy5qVLP9x+7i0LfFbh6CJsgg="
	whSigB    = "v1,v6wQre1KKxwampmIqL3rD76iqE3R4tZJq1aQZNi+aJo="
)

func whHeaders(id, ts, sig string) http.Header {
	h := http.Header{}
	for k, v := range map[string]string{"webhook-id": id, "webhook-timestamp": ts, "webhook-signature": sig} {
		if v != "" {
			h.Set(k, v)
		}
	}
	return h
}

func TestVerifyWebhookAccepts(t *testing.T) {
	now := time.Unix(whUnix, 0)
	for _, tc := range []struct {
		name, secret, sig string
		now               time.Time
		tolerance         time.Duration
	}{
		{"first of two signatures", whSecretA, whSigA + " " + whSigB, now, 0},
		{"second of two signatures", whSecretB, whSigA + " " + whSigB, now, 0},
		{"unknown scheme beside", whSecretB, "v1a,AAAA " + whSigB, now, 0},
		{"secret without prefix", strings.TrimPrefix(whSecretA, "whsec_"), whSigA, now, 0},
		{"default tolerance, 5 min late", whSecretA, whSigA, now.Add(5 * time.Minute), 0},
		{"default tolerance, 5 min early", whSecretA, whSigA, now.Add(-5 * time.Minute), 0},
		{"wide tolerance", whSecretA, whSigA, now.Add(time.Hour), 2 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := verifyWebhookAt(tc.now, tc.secret, whHeaders(whID, "1796396400", tc.sig), []byte(whBody), tc.tolerance)
			if err != nil {
				t.Fatal(err)
			}
			want := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
			if ev.ID != whID || ev.Type != WebhookConnectionReauthRequired || !ev.Timestamp.Equal(want) ||
				ev.Data.ConnectionID != "c-1" || ev.Data.UserID != "Zoë" {
				t.Fatalf("event = %+v", ev)
			}
		})
	}
}

func TestVerifyWebhookRefuses(t *testing.T) {
	now := time.Unix(whUnix, 0)
	tampered := strings.Replace(whBody, "c-1", "c-2", 1)
	for _, tc := range []struct {
		name, secret, id, ts, sig, body string
		now                             time.Time
		tolerance                       time.Duration
		want                            error
	}{
		{"tampered body", whSecretA, whID, "1796396400", whSigA, tampered, now, 0, ErrWebhookSignature},
		{"other id", whSecretA, "msg_vector2", "1796396400", whSigA, whBody, now, 0, ErrWebhookSignature},
		{"other timestamp", whSecretA, whID, "1796396401", whSigA, whBody, now, 0, ErrWebhookSignature},
		{"wrong secret", "whsec_" + strings.Repeat("A", 44), whID, "1796396400", whSigA, whBody, now, 0, ErrWebhookSignature},
		{"signature of the other secret only", whSecretA, whID, "1796396400", whSigB, whBody, now, 0, ErrWebhookSignature},
		{"only an unknown scheme", whSecretA, whID, "1796396400", "v2," + strings.TrimPrefix(whSigA, "v1,"), whBody, now, 0, ErrWebhookSignature},
		{"truncated signature", whSecretA, whID, "1796396400", whSigA[:20], whBody, now, 0, ErrWebhookSignature},
		{"bare base64", whSecretA, whID, "1796396400", strings.TrimPrefix(whSigA, "v1,"), whBody, now, 0, ErrWebhookSignature},
		{"stale by default", whSecretA, whID, "1796396400", whSigA, whBody, now.Add(5*time.Minute + time.Second), 0, ErrWebhookTimestamp},
		{"future by default", whSecretA, whID, "1796396400", whSigA, whBody, now.Add(-5*time.Minute - time.Second), 0, ErrWebhookTimestamp},
		{"stale with tolerance", whSecretA, whID, "1796396400", whSigA, whBody, now.Add(11 * time.Second), 10 * time.Second, ErrWebhookTimestamp},
		{"absurd timestamp", whSecretA, whID, "-9223372036854775808", whSigA, whBody, now, 0, ErrWebhookTimestamp},
		{"timestamp not a number", whSecretA, whID, "2026-12-04T15:00:00Z", whSigA, whBody, now, 0, ErrWebhookHeaders},
		{"no id", whSecretA, "", "1796396400", whSigA, whBody, now, 0, ErrWebhookHeaders},
		{"no timestamp", whSecretA, whID, "", whSigA, whBody, now, 0, ErrWebhookHeaders},
		{"no signature", whSecretA, whID, "1796396400", "", whBody, now, 0, ErrWebhookHeaders},
		{"empty secret", "whsec_", whID, "1796396400", whSigA, whBody, now, 0, ErrWebhookSecret},
		{"secret not base64", "whsec_not base64!", whID, "1796396400", whSigA, whBody, now, 0, ErrWebhookSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := verifyWebhookAt(tc.now, tc.secret, whHeaders(tc.id, tc.ts, tc.sig), []byte(tc.body), tc.tolerance)
			if !errors.Is(err, tc.want) || ev != nil {
				t.Fatalf("verify = %+v, %v; want nil, %v", ev, err, tc.want)
			}
		})
	}
}

func TestVerifyWebhookRefusesSignedNonEvent(t *testing.T) {
	// A correctly signed body that is not an event is refused as a
	// payload error, after the signature check.
	body := `[1,2,3]`
	sig := signForTest(t, whSecretA, whID, whUnix, body)
	ev, err := verifyWebhookAt(time.Unix(whUnix, 0), whSecretA, whHeaders(whID, "1796396400", sig), []byte(body), 0)
	if !errors.Is(err, ErrWebhookPayload) || ev != nil {
		t.Fatalf("verify = %+v, %v; want ErrWebhookPayload", ev, err)
	}
}

func signForTest(t *testing.T, secret, id string, unix int64, body string) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.%s", id, unix, body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// FuzzVerifyWebhook feeds arbitrary headers and bodies to the verifier: it
// must not panic, and whatever it accepts must carry the true signature of
// the message under the secret and a timestamp within the tolerance.
func FuzzVerifyWebhook(f *testing.F) {
	f.Add(whID, "1796396400", whSigA+" "+whSigB, whBody)
	f.Add(whID, "1796396400", whSigA, `{"type":"x"}`)
	f.Add("", "", "", "")
	f.Add("msg_1", "-9223372036854775808", "v1, v1,=", "null")
	f.Add("msg_1", "+1796396400", "v1a,AAAA  v1,"+strings.Repeat("A", 44), `{"type":"connection.active","data":{"scopes":null}}`)
	now := time.Unix(whUnix, 0)
	f.Fuzz(func(t *testing.T, id, ts, sigs, body string) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sigs)
		ev, err := verifyWebhookAt(now, whSecretA, h, []byte(body), 0)
		if err != nil {
			if ev != nil {
				t.Fatalf("event %+v with error %v", ev, err)
			}
			return
		}
		unix, perr := strconv.ParseInt(ts, 10, 64)
		if perr != nil || unix < whUnix-300 || unix > whUnix+300 {
			t.Fatalf("accepted timestamp %q", ts)
		}
		key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(whSecretA, "whsec_"))
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + ts + "." + body))
		want := mac.Sum(nil)
		found := false
		for _, s := range strings.Fields(sigs) {
			if raw, ok := strings.CutPrefix(s, "v1,"); ok {
				if got, err := base64.StdEncoding.DecodeString(raw); err == nil && hmac.Equal(got, want) {
					found = true
				}
			}
		}
		if !found || ev.ID != id {
			t.Fatalf("accepted a message without its signature: id %q ts %q sigs %q", id, ts, sigs)
		}
	})
}
