// Package delivery sends the lifecycle events queued in the outbox to
// webhook endpoints: a Dispatcher claims due deliveries (any broker replica
// may run one; claims never overlap), signs each message with the
// endpoint's secrets, POSTs it once, and records the outcome.
//
// Guarantees: at least once (a claim is a lease; a replica that dies
// mid-delivery leaves a lease that runs out and another replica sends the
// message again, with the same webhook-id), in order per connection and
// endpoint (the store hands out an event only when the one before it was
// delivered or given up on), retried on the Schedule (exponential with
// jitter, about a day in all) and then given up. An endpoint that has been
// failing for DisableAfter is disabled, with an audit event and a metric.
//
// Every attempt is bounded: a per-attempt timeout, redirects refused, at
// most a few KiB of the answer read, and every dial checked by the SSRF
// guard (netguard) whatever the URL resolved to at registration. A slow or
// hostile receiver holds one of Workers goroutines for at most Timeout and
// nothing else.
package delivery
