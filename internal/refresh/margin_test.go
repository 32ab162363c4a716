package refresh

import (
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

func TestEffectiveMargin(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		margin   time.Duration
		obtained time.Time
		expires  time.Time
		want     time.Duration
	}{
		{"hour-long token keeps the margin", time.Minute, t0, t0.Add(time.Hour), time.Minute},
		{"5-minute token keeps a 60 s margin", time.Minute, t0, t0.Add(5 * time.Minute), time.Minute},
		{"2-minute token: a third of its life", time.Minute, t0, t0.Add(2 * time.Minute), 40 * time.Second},
		{"20-second token: a third of its life", time.Minute, t0, t0.Add(20 * time.Second), 20 * time.Second / 3},
		{"1-second token", time.Minute, t0, t0.Add(time.Second), time.Second / 3},
		{"worker window on a 1-minute token", 2 * time.Minute, t0, t0.Add(time.Minute), 20 * time.Second},
		{"unknown expiry", time.Minute, t0, time.Time{}, time.Minute},
		{"unknown obtained time", time.Minute, time.Time{}, t0.Add(20 * time.Second), time.Minute},
		{"issued already expired", time.Minute, t0, t0.Add(-time.Second), time.Minute},
		{"issued expiring at once", time.Minute, t0, t0, time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := effectiveMargin(tc.margin, tc.obtained, tc.expires); got != tc.want {
				t.Fatalf("effectiveMargin = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestDue: when a token row is due for a refresh, as the reader and the
// worker see it over the token's life.
func TestDue(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	now := t0
	r := &Refresher{now: func() time.Time { return now }}
	short := storage.Token{UpdatedAt: t0, ExpiresAt: t0.Add(20 * time.Second)}
	long := storage.Token{UpdatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	unknown := storage.Token{UpdatedAt: t0}
	cases := []struct {
		name   string
		tok    storage.Token
		margin time.Duration
		age    time.Duration
		want   bool
	}{
		{"20-second token just issued", short, time.Minute, 0, false},
		{"20-second token at 13 s", short, time.Minute, 13 * time.Second, false},
		{"20-second token at 13.4 s", short, time.Minute, 13400 * time.Millisecond, true},
		{"20-second token expired", short, time.Minute, 25 * time.Second, true},
		{"20-second token, worker window, at 13 s", short, 2 * time.Minute, 13 * time.Second, false},
		{"hour token at 58 min", long, time.Minute, 58 * time.Minute, false},
		{"hour token at 59 min 1 s", long, time.Minute, 59*time.Minute + time.Second, true},
		{"hour token, worker window, at 58 min 1 s", long, 2 * time.Minute, 58*time.Minute + time.Second, true},
		{"unknown expiry is never due", unknown, time.Minute, 100 * time.Hour, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now = t0.Add(tc.age)
			if got := r.due(tc.margin, tc.tok); got != tc.want {
				t.Fatalf("due = %v, want %v (due at %v)", got, tc.want, dueAt(tc.margin, tc.tok).Sub(t0))
			}
		})
	}
}
