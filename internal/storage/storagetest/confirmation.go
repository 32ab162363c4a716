package storagetest

import (
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/confirm"
	"github.com/dromos-dev/dromos/internal/storage"
)

// awaitingConfirmation stores a connection that exchanged its code and
// waits for its user's confirmation, with a token, and returns the first
// value.
func awaitingConfirmation(t *testing.T, s storage.Storage, id string) (storage.Connection, confirm.Value) {
	t.Helper()
	c := newConnection(id)
	c.Status, c.UserID = storage.StatusExchanging, "mallory"
	createConnection(t, s, c)
	v, digest, err := confirm.New(rand.Reader, id)
	must(t, "confirm.New", err)
	tok := newToken(id, "sealed")
	c, err = s.UpdateConnection(t.Context(), id, func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
		return confirm.Begin(c, digest, baseTime()), storage.TokenChange{Put: &tok}, nil
	})
	must(t, "begin confirmation", err)
	return c, v
}

// userStep runs the user step at baseTime()+after and returns the result
// and the second value it issued.
func userStep(t *testing.T, s storage.Storage, id string, v confirm.Value, user string, after time.Duration) (confirm.Result, confirm.Value) {
	t.Helper()
	next, digest, err := confirm.New(rand.Reader, id)
	must(t, "confirm.New", err)
	res, err := confirm.Run(t.Context(), s, id, func(c storage.Connection) (storage.Connection, confirm.Outcome) {
		return confirm.User(c, v.Reveal(), user, digest, baseTime().UTC().Add(after))
	})
	must(t, "user step", err)
	return res, next
}

// wantFailed checks the stored connection failed for reason, its token
// row is gone, and the erased row came back for revocation.
func wantFailed(t *testing.T, s storage.Storage, res confirm.Result, id, reason string) {
	t.Helper()
	if res.Outcome != confirm.Failed || res.Erased == nil {
		t.Fatalf("outcome %s (erased token returned: %v), want failed with the token to revoke", res.Outcome, res.Erased != nil)
	}
	c := getConnection(t, s, id)
	if c.Status != storage.StatusFailed || c.StatusReason != reason || c.ConfirmationHash != "" || c.PKCEVerifier != nil {
		t.Fatalf("stored %s/%s (hash kept %v, verifier kept %v), want failed/%s without confirmation material",
			c.Status, c.StatusReason, c.ConfirmationHash != "", c.PKCEVerifier != nil, reason)
	}
	if _, err := s.GetToken(t.Context(), id); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("token after a failed confirmation: %v, want ErrNotFound", err)
	}
}

func runConfirmation(t *testing.T, open func(t *testing.T) storage.Storage) {
	t.Run("HonestPath", func(t *testing.T) {
		s := open(t)
		_, v := awaitingConfirmation(t, s, "c1")
		res, second := userStep(t, s, "c1", v, "mallory", time.Minute)
		if res.Outcome != confirm.Advanced || res.Conn.StatusReason != confirm.AwaitingBrowser {
			t.Fatalf("user step: %s %s", res.Outcome, res.Conn.StatusReason)
		}
		res, err := confirm.Run(t.Context(), s, "c1", func(c storage.Connection) (storage.Connection, confirm.Outcome) {
			return confirm.Browser(c, second.Reveal(), true, baseTime().UTC().Add(2*time.Minute))
		})
		must(t, "browser step", err)
		c := getConnection(t, s, "c1")
		if res.Outcome != confirm.Advanced || c.Status != storage.StatusActive || c.ConfirmationHash != "" || !c.ConfirmationExpiresAt.IsZero() {
			t.Fatalf("browser step: %s, stored %s hash %q expiry %v", res.Outcome, c.Status, c.ConfirmationHash, c.ConfirmationExpiresAt)
		}
		if tok := getToken(t, s, "c1"); string(tok.Ciphertext[4:]) != "sealed" {
			t.Fatalf("token changed by the confirmation")
		}
	})

	t.Run("UserMismatch", func(t *testing.T) {
		s := open(t)
		_, v := awaitingConfirmation(t, s, "c1")
		res, _ := userStep(t, s, "c1", v, "alice", time.Minute)
		wantFailed(t, s, res, "c1", confirm.UserMismatch)
	})

	t.Run("Replay", func(t *testing.T) {
		s := open(t)
		_, v := awaitingConfirmation(t, s, "c1")
		if res, _ := userStep(t, s, "c1", v, "mallory", time.Minute); res.Outcome != confirm.Advanced {
			t.Fatalf("first use: %s", res.Outcome)
		}
		res, _ := userStep(t, s, "c1", v, "mallory", 2*time.Minute)
		wantFailed(t, s, res, "c1", confirm.Reused)
	})

	t.Run("OtherBrowser", func(t *testing.T) {
		s := open(t)
		_, v := awaitingConfirmation(t, s, "c1")
		_, second := userStep(t, s, "c1", v, "mallory", time.Minute)
		res, err := confirm.Run(t.Context(), s, "c1", func(c storage.Connection) (storage.Connection, confirm.Outcome) {
			return confirm.Browser(c, second.Reveal(), false, baseTime().UTC().Add(2*time.Minute))
		})
		must(t, "browser step", err)
		wantFailed(t, s, res, "c1", confirm.BrowserMismatch)
	})

	t.Run("AfterFiveMinutes", func(t *testing.T) {
		s := open(t)
		_, v := awaitingConfirmation(t, s, "c1")
		res, _ := userStep(t, s, "c1", v, "mallory", confirm.TTL)
		wantFailed(t, s, res, "c1", confirm.Expired)
	})

	t.Run("WrongValueChangesNothing", func(t *testing.T) {
		s := open(t)
		before, _ := awaitingConfirmation(t, s, "c1")
		guess, _, err := confirm.New(rand.Reader, "c1")
		must(t, "confirm.New", err)
		res, _ := userStep(t, s, "c1", guess, "mallory", time.Minute)
		after := getConnection(t, s, "c1")
		if res.Outcome != confirm.Refused || after.Version != before.Version || after.Status != storage.StatusAwaitingConfirmation {
			t.Fatalf("guess: %s, version %d→%d, status %s", res.Outcome, before.Version, after.Version, after.Status)
		}
		getToken(t, s, "c1")
	})

	// Of concurrent presentations of one value, exactly one passes: the
	// others find it used. For the browser step that leaves the winner's
	// connection active.
	t.Run("ConcurrentBrowserSteps", func(t *testing.T) {
		s := open(t)
		_, v := awaitingConfirmation(t, s, "c1")
		_, second := userStep(t, s, "c1", v, "mallory", time.Minute)
		const workers = 8
		outs := make([]confirm.Outcome, workers)
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() {
				var res confirm.Result
				res, errs[i] = confirm.Run(t.Context(), s, "c1", func(c storage.Connection) (storage.Connection, confirm.Outcome) {
					return confirm.Browser(c, second.Reveal(), true, baseTime().UTC().Add(2*time.Minute))
				})
				outs[i] = res.Outcome
			})
		}
		wg.Wait()
		won := 0
		for i := range workers {
			must(t, "browser step", errs[i])
			switch outs[i] {
			case confirm.Advanced:
				won++
			case confirm.Over:
			default:
				t.Errorf("worker %d: %s, want advanced or over", i, outs[i])
			}
		}
		if c := getConnection(t, s, "c1"); won != 1 || c.Status != storage.StatusActive {
			t.Fatalf("%d winners, stored %s; want exactly 1 and active", won, c.Status)
		}
	})

	// Two applications (or one, twice) presenting the first value at once:
	// one passes, the next is a reuse and fails the connection, any later
	// one finds it over. Never two passes.
	t.Run("ConcurrentUserSteps", func(t *testing.T) {
		s := open(t)
		_, v := awaitingConfirmation(t, s, "c1")
		const workers = 8
		outs := make([]confirm.Outcome, workers)
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() {
				res, _ := userStep(t, s, "c1", v, "mallory", time.Minute)
				outs[i] = res.Outcome
			})
		}
		wg.Wait()
		n := map[confirm.Outcome]int{}
		for _, o := range outs {
			n[o]++
		}
		if n[confirm.Advanced] != 1 || n[confirm.Failed] != 1 || n[confirm.Over] != workers-2 {
			t.Fatalf("outcomes %v, want 1 advanced, 1 failed (reuse), %d over", n, workers-2)
		}
		if c := getConnection(t, s, "c1"); c.Status != storage.StatusFailed || c.StatusReason != confirm.Reused {
			t.Fatalf("stored %s/%s, want failed/%s", c.Status, c.StatusReason, confirm.Reused)
		}
	})
}
