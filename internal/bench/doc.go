// Package bench is the load benchmark behind `make bench`: it builds the
// dromos binary, runs real broker and gateway processes on PostgreSQL and on
// SQLite against an in-process fake OAuth provider, drives them with a
// closed-loop HTTP load generator, runs the same load against a minimal
// net/http reference server in a process of its own, and prints Dromos's
// figures beside the reference's with the performance targets met or
// MISSED.
//
// It owns the harness (processes, fake provider, PostgreSQL scratch
// schemas), the load generator and the report. It measures; it changes
// nothing in the product, and a missed target is a result, not a failure.
package bench
