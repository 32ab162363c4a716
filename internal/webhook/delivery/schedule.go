package delivery

import (
	"math/rand/v2"
	"time"
)

// DefaultSchedule is the wait before each retry: after the first failed
// attempt 5 s, then 30 s, 2 min, 5 min, 15 min, 30 min, 1 h, 2 h, 4 h, 8 h
// and 8 h: twelve attempts over about 24 hours, then the delivery is given
// up. Each wait is jittered by up to ±20 %, so receivers coming back from
// an outage are not hit by every replica at once.
var DefaultSchedule = []time.Duration{
	5 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute, 15 * time.Minute,
	30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 8 * time.Hour,
}

// jitterFraction bounds the random part of each wait.
const jitterFraction = 0.2

// nextAttempt returns when to try again after the attempts-th failed
// attempt (1 for the first), or ok false when the schedule is exhausted.
// jitter is a number in [0, 1).
func nextAttempt(schedule []time.Duration, attempts int, now time.Time, jitter float64) (time.Time, bool) {
	if attempts < 1 || attempts > len(schedule) {
		return time.Time{}, false
	}
	base := schedule[attempts-1]
	d := time.Duration(float64(base) * (1 - jitterFraction + 2*jitterFraction*jitter))
	return now.Add(d), true
}

// randJitter is the jitter source of production.
func randJitter() float64 { return rand.Float64() }
