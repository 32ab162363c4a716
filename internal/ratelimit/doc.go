// Package ratelimit is a per-key token-bucket limiter for the public and
// internal HTTP routes, keyed by client address, with bounded memory.
//
// Each key has a bucket of burst tokens refilled at rate per second; a
// request takes one token or is refused with the time until one is back.
// Buckets live in one map with a least-recently-used list: buckets idle
// for IdleTTL are dropped as the list is touched, and when MaxKeys buckets
// exist the least recently used one is recycled, so a flood of distinct
// addresses costs a fixed amount of memory rather than growing without
// bound. A dropped bucket comes back full, which is exactly its state after
// IdleTTL when IdleTTL is at least burst/rate (the default).
//
// The clock is injected; the package does no I/O and is safe for
// concurrent use.
package ratelimit
