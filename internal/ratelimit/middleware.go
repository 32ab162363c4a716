package ratelimit

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// Middleware limits requests by keyFn(r). A refused request gets a
// Retry-After header (whole seconds, at least 1) and is then handed to
// onLimited, which must answer 429 Too Many Requests; a nil onLimited
// writes the standard error envelope with code "rate_limited".
func Middleware(l *Limiter, keyFn func(*http.Request) string, onLimited http.Handler) func(http.Handler) http.Handler {
	if onLimited == nil {
		onLimited = http.HandlerFunc(tooMany)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ok, wait := l.Allow(keyFn(r))
			if ok {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Retry-After", strconv.FormatInt(RetryAfterSeconds(wait), 10))
			onLimited.ServeHTTP(w, r)
		})
	}
}

// RetryAfterSeconds rounds a wait up to whole seconds, at least 1: a
// client told "0" would retry at once.
func RetryAfterSeconds(d time.Duration) int64 {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		return 1
	}
	return s
}

func tooMany(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write([]byte(`{"code":"rate_limited","message":"too many requests; retry later"}` + "\n"))
}
