package confirm_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/confirm"
	"github.com/dromos-dev/dromos/internal/storage"
)

var t0 = time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

func awaiting(t *testing.T) (storage.Connection, confirm.Value) {
	t.Helper()
	v, d, err := confirm.New(rand.Reader, "conn-1")
	if err != nil {
		t.Fatal(err)
	}
	c := storage.Connection{ID: "conn-1", UserID: "mallory", Status: storage.StatusExchanging, PKCEVerifier: []byte("sealed")}
	return confirm.Begin(c, d, t0), v
}

func TestUserStep(t *testing.T) {
	next := confirm.Digest("next")
	for _, tc := range []struct {
		name    string
		value   func(confirm.Value) string
		user    string
		at      time.Duration
		want    confirm.Outcome
		status  storage.ConnectionStatus
		reason  string
		hashSet bool
	}{
		{"match", func(v confirm.Value) string { return v.Reveal() }, "mallory", time.Minute, confirm.Advanced, storage.StatusAwaitingConfirmation, confirm.AwaitingBrowser, true},
		{"other user", func(v confirm.Value) string { return v.Reveal() }, "alice", time.Minute, confirm.Failed, storage.StatusFailed, confirm.UserMismatch, false},
		{"user differing in case", func(v confirm.Value) string { return v.Reveal() }, "Mallory", time.Minute, confirm.Failed, storage.StatusFailed, confirm.UserMismatch, false},
		{"after five minutes", func(v confirm.Value) string { return v.Reveal() }, "mallory", confirm.TTL, confirm.Failed, storage.StatusFailed, confirm.Expired, false},
		{"guessed value", func(confirm.Value) string { return "conn-1." + strings.Repeat("A", 43) }, "mallory", time.Minute, confirm.Refused, storage.StatusAwaitingConfirmation, confirm.AwaitingUser, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, v := awaiting(t)
			got, out := confirm.User(c, tc.value(v), tc.user, next, t0.Add(tc.at))
			if out != tc.want || got.Status != tc.status || got.StatusReason != tc.reason || (got.ConfirmationHash != "") != tc.hashSet {
				t.Fatalf("outcome %s, status %s/%s, hash set %v; want %s, %s/%s, %v",
					out, got.Status, got.StatusReason, got.ConfirmationHash != "", tc.want, tc.status, tc.reason, tc.hashSet)
			}
			if out == confirm.Failed && got.PKCEVerifier != nil {
				t.Error("a failed confirmation keeps the sealed flow binding")
			}
		})
	}
}

func TestReplayOfTheFirstValueFails(t *testing.T) {
	c, v := awaiting(t)
	c, out := confirm.User(c, v.Reveal(), "mallory", confirm.Digest("second"), t0.Add(time.Second))
	if out != confirm.Advanced {
		t.Fatalf("first use: %s", out)
	}
	c, out = confirm.User(c, v.Reveal(), "mallory", confirm.Digest("third"), t0.Add(2*time.Second))
	if out != confirm.Failed || c.StatusReason != confirm.Reused {
		t.Fatalf("replay: %s %s/%s, want failed confirmation_reused", out, c.Status, c.StatusReason)
	}
	if _, out := confirm.User(c, v.Reveal(), "mallory", "", t0.Add(3*time.Second)); out != confirm.Over {
		t.Fatalf("after the failure: %s, want over", out)
	}
}

func TestBrowserStep(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bound  bool
		at     time.Duration
		wrong  bool
		want   confirm.Outcome
		status storage.ConnectionStatus
		reason string
	}{
		{"bound browser", true, time.Minute, false, confirm.Advanced, storage.StatusActive, ""},
		{"other browser", false, time.Minute, false, confirm.Failed, storage.StatusFailed, confirm.BrowserMismatch},
		{"after five minutes", true, confirm.TTL + time.Second, false, confirm.Failed, storage.StatusFailed, confirm.Expired},
		{"first value instead of the second", true, time.Minute, true, confirm.Refused, storage.StatusAwaitingConfirmation, confirm.AwaitingBrowser},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, v := awaiting(t)
			second, d, err := confirm.New(rand.Reader, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			c, out := confirm.User(c, v.Reveal(), "mallory", d, t0.Add(time.Second))
			if out != confirm.Advanced {
				t.Fatalf("user step: %s", out)
			}
			present := second.Reveal()
			if tc.wrong {
				present = v.Reveal()
			}
			got, out := confirm.Browser(c, present, tc.bound, t0.Add(tc.at))
			if out != tc.want || got.Status != tc.status || got.StatusReason != tc.reason {
				t.Fatalf("outcome %s, status %s/%s; want %s, %s/%s", out, got.Status, got.StatusReason, tc.want, tc.status, tc.reason)
			}
			if out == confirm.Advanced {
				if got.ConfirmationHash != "" || !got.ConfirmationExpiresAt.IsZero() || got.PKCEVerifier != nil {
					t.Error("an active connection keeps confirmation material")
				}
				if _, again := confirm.Browser(got, second.Reveal(), true, t0.Add(tc.at)); again != confirm.Over {
					t.Errorf("second value used twice: %s", again)
				}
			}
		})
	}
}

func TestBrowserStepBeforeUserStepIsRefused(t *testing.T) {
	c, v := awaiting(t)
	if got, out := confirm.Browser(c, v.Reveal(), true, t0); out != confirm.Refused || got.Status != storage.StatusAwaitingConfirmation {
		t.Fatalf("%s %s", out, got.Status)
	}
}

func TestLapse(t *testing.T) {
	c, _ := awaiting(t)
	if _, out := confirm.Lapse(c, t0.Add(confirm.TTL-time.Second)); out != confirm.Over {
		t.Fatalf("before expiry: %s", out)
	}
	if got, out := confirm.Lapse(c, t0.Add(confirm.TTL)); out != confirm.Failed || got.StatusReason != confirm.Expired {
		t.Fatalf("at expiry: %s %s", out, got.StatusReason)
	}
}

func TestConnectionID(t *testing.T) {
	v, _, err := confirm.New(rand.Reader, "3f1c0a6e-1111-4222-8333-944445555666")
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := confirm.ConnectionID(v.Reveal()); !ok || id != "3f1c0a6e-1111-4222-8333-944445555666" {
		t.Fatalf("ConnectionID = %q, %v", id, ok)
	}
	for _, bad := range []string{"", "noid", ".abc", "id." + strings.Repeat("A", 42), "id." + strings.Repeat("*", 43), strings.Repeat("x", 400)} {
		if _, ok := confirm.ConnectionID(bad); ok {
			t.Errorf("ConnectionID(%q) accepted", bad)
		}
	}
}

func TestValueNeverPrinted(t *testing.T) {
	v, _, err := confirm.New(rand.Reader, "conn-1")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "confirmation", v)
	printed := buf.String() + fmt.Sprint(v) + fmt.Sprintf("%v %s", v, v)
	if strings.Contains(printed, v.Reveal()) {
		t.Fatalf("value printed: %s", printed)
	}
}
