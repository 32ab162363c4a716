// Package refresh keeps connections' access tokens fresh: refresh on read
// with a margin, forced refreshes, the in-process single-flight and the
// cross-process lease (a compare-and-swap on the connection row, with a
// version-fenced write), per-connection backoff shared by every replica,
// the classification of provider failures, and the refresh-ahead pass of
// the background worker. It knows providers only through the Grants
// interface the broker implements.
package refresh
