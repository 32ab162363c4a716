// Package proxyaudit carries the API proxy's per-call audit records from
// the gateway, which stores nothing, to the broker's audit table.
//
// It owns the record both sides agree on (Event, sent in a Batch), the
// broker's checks of what a gateway sends (Batch.Check: sizes, control
// characters, ranges; nothing in it may be a query, a header, a body or a
// token), the row an event becomes (Event.Row, type "proxy.call") and the
// gateway's side of the trip (Batcher: a bounded queue flushed off the
// request path every second or every MaxBatch events, dropping with a
// metric when full, flushed on Close).
//
// The package does no storage and no HTTP: the gateway sends batches
// through its Broker interface, and the broker checks each connection's
// owner and writes the rows through its audit queue.
package proxyaudit
