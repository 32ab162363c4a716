// Package tokencache keeps the token read's row in memory: a cache of the
// active connections and their SEALED token rows that GetConnectionToken
// returns, in front of the storage backend, so that a token read of a hot
// connection makes no database round trip. Rows of connections in any
// other state are not kept: a connection activated elsewhere is served at
// once. Rows stay sealed here; the broker opens
// them with the vault on every read, as it does rows from the database.
//
// Every replica has its own cache and they share nothing but the
// database, so the cache must learn of changes other replicas (and the
// `dromos rotate-keys` command) make. It does so by checking: every
// Staleness/2 one query reads the Version of every cached connection
// (storage.ConnectionVersions, by primary key), and a row whose version
// moved or whose connection is gone is dropped. Every change to a
// connection or its token goes through UpdateConnection, which grows the
// version, or deletes the row, so nothing escapes the check. Rows nobody
// read for a while are dropped instead of checked: the checks cost what
// the connections in use need.
//
// The staleness bound is strict, not best effort: each row carries the
// time of the last read or check that found it current (taken before that
// query started), and a row not confirmed within Staleness is not served
// but read again from the database. A refresh, revocation, deletion or key
// rotation committed by another replica at time t is therefore never
// served after t + Staleness, whether or not the checker kept up (a
// database outage just turns every read into a database read). Writes made
// through this cache (the replica's own refreshes, revocations,
// deletions) drop the row at once, and a read that started before such a
// write cannot put its older row back.
package tokencache
