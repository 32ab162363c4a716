// Package apikey finds the one API key a request presents, in an
// Authorization: Bearer header or an X-API-Key header (HTTP headers or gRPC
// metadata), for the broker's and the gateway's guards alike. A request that
// presents more than one credential is ambiguous and is refused rather than
// resolved by an order of precedence: with "the first one wins", a proxy or
// client that adds a header of its own decides who the caller is.
package apikey
