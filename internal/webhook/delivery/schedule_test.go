package delivery

import (
	"testing"
	"time"
)

func TestScheduleSpansAboutADay(t *testing.T) {
	var total time.Duration
	for _, d := range DefaultSchedule {
		total += d
	}
	if total < 23*time.Hour || total > 25*time.Hour {
		t.Errorf("DefaultSchedule spans %v, want about 24 h", total)
	}
	for i := 1; i < len(DefaultSchedule); i++ {
		if DefaultSchedule[i] < DefaultSchedule[i-1] {
			t.Errorf("wait %d (%v) shorter than the one before", i, DefaultSchedule[i])
		}
	}
}

func TestNextAttempt(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sched := []time.Duration{10 * time.Second, time.Minute}
	for _, tc := range []struct {
		name     string
		attempts int
		jitter   float64
		want     time.Duration
		ok       bool
	}{
		{"first failure, no jitter drawn low", 1, 0, 8 * time.Second, true},
		{"first failure, middle", 1, 0.5, 10 * time.Second, true},
		{"first failure, high", 1, 0.999999, 12 * time.Second, true},
		{"second failure", 2, 0.5, time.Minute, true},
		{"schedule exhausted", 3, 0.5, 0, false},
		{"no attempt yet", 0, 0.5, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := nextAttempt(sched, tc.attempts, now, tc.jitter)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok && got.Sub(now).Round(time.Millisecond) != tc.want {
				t.Errorf("wait %v, want %v", got.Sub(now), tc.want)
			}
		})
	}
}
