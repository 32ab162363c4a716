package exchange

import (
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name, in string
		want     time.Duration
	}{
		{"absent", "", 0},
		{"seconds", "120", 2 * time.Minute},
		{"spaces", " 30 ", 30 * time.Second},
		{"http date", now.Add(90 * time.Second).Format(http1123), 90 * time.Second},
		{"date in the past", now.Add(-time.Minute).Format(http1123), 0},
		{"negative", "-5", 0},
		{"garbage", "soon", 0},
		{"capped at an hour", "86400", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryAfter(tc.in, now); got != tc.want {
				t.Fatalf("retryAfter(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"
