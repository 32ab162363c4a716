// Package httpapi holds what every Dromos HTTP API shares: the error
// envelope {"code","message"} and the one writer that maps errors to it,
// strict JSON request decoding with a body limit, and the middleware that
// gives each request an id, an access log line and panic recovery.
package httpapi
