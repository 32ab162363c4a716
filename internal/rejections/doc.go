// Package rejections turns refused callbacks (forged, tampered, expired or
// replayed states, unbound browsers, repeated parameters) into audit rows
// without letting a flood grow the audit table: rejections are counted in
// memory per reason and client address, and each window (default one
// minute) writes one "callback.rejected" row per pair that occurred, with
// the count, the window's bounds and the reason in its detail. At most
// MaxKeys pairs are kept per window; rejections beyond them are counted in
// one row per reason without a client address ("other_addresses").
//
// Rows are written off the request path, at the end of each window, on
// Flush and on Close; a crash loses at most the current window's counts
// (the Prometheus counter of the caller keeps them).
package rejections
