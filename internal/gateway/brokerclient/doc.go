// Package brokerclient is the gateway's client for the broker's internal
// HTTP API (docs/BROKER_API.md): the few calls the gateway makes, one pooled
// keep-alive connection set, bounded retries for idempotent reads, and the
// one place where broker answers are mapped to the errors agents see.
//
// Every error it returns is an *httpapi.Error: a broker 4xx envelope keeps
// its status, code and message (the broker writes them to be client-safe),
// broker trouble becomes 502 broker_error, and an unreachable or slow broker
// becomes 503 unavailable with Retry-After. Token bodies pass through memory
// only; nothing here logs a token, a state or the API key.
package brokerclient
