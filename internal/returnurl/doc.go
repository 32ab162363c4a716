// Package returnurl decides whether a return_url an agent hands the broker
// is safe to send a browser to after consent, and normalizes it.
//
// The broker redirects the user's browser to this address with the new
// connection_id attached, so an attacker who can choose it gets an open
// redirect on the broker's origin and, with it, connection ids. Check
// therefore refuses every form a browser might read differently from Go's
// URL parser (backslashes, control and invisible characters, scheme-relative
// and opaque forms, userinfo, percent-encoded hosts, numeric host
// shorthands, fragments) and compares hosts only after IDNA Lookup mapping
// to ASCII, lower-casing and removal of the trailing dot, so a look-alike
// Unicode or punycode name never equals a plain ASCII allowed domain. The URL it returns carries that normalized
// host, so what was checked is what the browser is sent to.
//
// The package does no I/O and is safe for concurrent use.
package returnurl
