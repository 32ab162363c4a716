package storagetest

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

var errLeaseHeld = errors.New("storagetest: refresh lease held")

func runRefresh(t *testing.T, open func(t *testing.T) storage.Storage) {
	t.Run("LeaseRoundTrip", func(t *testing.T) {
		s := open(t)
		in := newConnection("c1")
		createConnection(t, s, in)
		checkLease(t, "after create", getConnection(t, s, "c1"), in.RefreshLeaseUntil, in.RefreshLeaseOwner)

		for _, step := range []struct {
			name  string
			until time.Time
			owner string
		}{
			{"claim", baseTime().Add(time.Minute + 111111111), "broker-a"},
			{"hand over", baseTime().Add(2*time.Minute + 999999), "broker-b"},
			{"release", time.Time{}, ""},
			{"claim again", baseTime().Add(3 * time.Minute), "broker-c"},
		} {
			t.Run(step.name, func(t *testing.T) {
				got, err := s.UpdateConnection(t.Context(), "c1", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
					c.RefreshLeaseUntil, c.RefreshLeaseOwner = step.until, step.owner
					return c, storage.TokenChange{}, nil
				})
				must(t, "UpdateConnection", err)
				checkLease(t, "UpdateConnection result", got, step.until, step.owner)
				checkLease(t, "stored connection", getConnection(t, s, "c1"), step.until, step.owner)
			})
		}
	})

	t.Run("ExpirySourceRoundTrip", func(t *testing.T) {
		s := open(t)
		createConnection(t, s, newConnection("c1"))
		prev := ""
		for _, source := range []string{"expires_in", "jwt_exp", "provider_default", "unknown", ""} {
			t.Run("source "+strconv.Quote(source), func(t *testing.T) {
				tok := newToken("c1", source)
				tok.ExpirySource = source
				_, err := s.UpdateConnection(t.Context(), "c1", func(c storage.Connection, seen *storage.Token) (storage.Connection, storage.TokenChange, error) {
					if seen != nil && seen.ExpirySource != prev {
						t.Errorf("fn saw ExpirySource %q, want %q", seen.ExpirySource, prev)
					}
					return c, storage.TokenChange{Put: &tok}, nil
				})
				must(t, "UpdateConnection put token", err)
				if got := getToken(t, s, "c1").ExpirySource; got != source {
					t.Fatalf("ExpirySource = %q, want %q", got, source)
				}
				prev = source
			})
		}
	})

	t.Run("DueForRefresh", func(t *testing.T) { runDueForRefresh(t, open) })
	t.Run("DueInUse", func(t *testing.T) { runDueInUse(t, open) })
	t.Run("DueClaims", func(t *testing.T) { runDueClaims(t, open) })
	t.Run("ProviderBudget", func(t *testing.T) { runProviderBudget(t, open) })

	t.Run("LeaseClaimRace", func(t *testing.T) {
		now := baseTime()
		for _, tc := range []struct {
			name        string
			until       time.Time
			owner       string
			wantWinners int
		}{
			{"free", time.Time{}, "", 1},
			{"run out", now.Add(-time.Second), "crashed-broker", 1},
			{"ends now", now, "finished-broker", 1},
			{"held", now.Add(time.Second), "live-broker", 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				c := dueConnection("c1", now)
				c.RefreshLeaseUntil, c.RefreshLeaseOwner = tc.until, tc.owner
				createConnection(t, s, c)
				tok := newToken("c1", "t")
				tok.ExpiresAt = now.Add(time.Minute)
				before := putToken(t, s, "c1", tok)

				const workers = 10
				errs := make([]error, workers)
				var wg sync.WaitGroup
				for i := range workers {
					wg.Go(func() {
						_, errs[i] = s.UpdateConnection(t.Context(), "c1", func(c storage.Connection, _ *storage.Token) (storage.Connection, storage.TokenChange, error) {
							if c.RefreshLeaseUntil.After(now) {
								return c, storage.TokenChange{}, errLeaseHeld
							}
							c.RefreshLeaseUntil = now.Add(time.Minute)
							c.RefreshLeaseOwner = "worker-" + strconv.Itoa(i)
							return c, storage.TokenChange{}, nil
						})
					})
				}
				wg.Wait()
				var winners []string
				for i, err := range errs {
					switch {
					case err == nil:
						winners = append(winners, "worker-"+strconv.Itoa(i))
					case !errors.Is(err, errLeaseHeld):
						t.Errorf("worker %d: %v, want nil or errLeaseHeld", i, err)
					}
				}
				if len(winners) != tc.wantWinners {
					t.Fatalf("%d workers claimed the lease (%q), want %d", len(winners), winners, tc.wantWinners)
				}

				got := getConnection(t, s, "c1")
				wantOwner, wantUntil, wantVersion := tc.owner, tc.until, before.Version
				if tc.wantWinners == 1 {
					wantOwner, wantUntil, wantVersion = winners[0], now.Add(time.Minute), before.Version+1
				}
				checkLease(t, "stored connection", got, wantUntil, wantOwner)
				if got.Version != wantVersion {
					t.Errorf("Version = %d, want %d", got.Version, wantVersion)
				}
				// A claimed lease hides the connection from other brokers
				// until it runs out.
				wantDue(t, s, "at now", now, nil)
				wantDue(t, s, "when the lease ends", now.Add(time.Minute), []string{"c1"})
			})
		}
	})
}

// checkLease compares the lease fields, times to the microsecond.
func checkLease(t *testing.T, what string, c storage.Connection, until time.Time, owner string) {
	t.Helper()
	if d := c.RefreshLeaseUntil.Sub(until).Abs(); d >= time.Microsecond || c.RefreshLeaseUntil.IsZero() != until.IsZero() {
		t.Errorf("%s: RefreshLeaseUntil = %v, want %v to the microsecond", what, c.RefreshLeaseUntil, until)
	}
	if !c.RefreshLeaseUntil.IsZero() && c.RefreshLeaseUntil.Location() != time.UTC {
		t.Errorf("%s: RefreshLeaseUntil location %v, want UTC", what, c.RefreshLeaseUntil.Location())
	}
	if c.RefreshLeaseOwner != owner {
		t.Errorf("%s: RefreshLeaseOwner = %q, want %q", what, c.RefreshLeaseOwner, owner)
	}
}
