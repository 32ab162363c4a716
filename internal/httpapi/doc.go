// Package httpapi holds what every Dromos HTTP API shares: the error
// envelope {"code","message"} and the one writer that maps errors to it,
// strict JSON request decoding with a body limit, JSON answer writers (a
// reflection-free one for the token answers on the hot path), the
// middleware that gives each request an id, an access log line and panic
// recovery, and a cache of the per-request metric children.
package httpapi
