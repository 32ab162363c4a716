// Package readmark remembers which connections' tokens are being read, so
// that the background worker refreshes ahead only the connections in use.
// Reads are marked in memory on the read path (a map insert, no I/O) and
// written to the database in batches by a goroutine of their own, at most
// once a minute per connection: a connection read a thousand times a
// minute costs one row update a minute.
package readmark
