// Package auditq writes high-volume audit events (token reads) off the
// request path, in batches, with backpressure instead of loss while the
// database keeps up.
package auditq
