// Package sqlite is the SQLite implementation of storage.Storage, built on
// modernc.org/sqlite (pure Go, no cgo). It backs `dromos dev` and small
// single-node installs.
//
// The database runs in WAL mode with foreign keys on. Writes go through a
// pool of one connection whose transactions begin IMMEDIATE, so a
// read-check-write in UpdateConnection holds the write lock from its first
// read: in-process writers queue on that connection instead of failing with
// SQLITE_BUSY, and another process (`dromos migrate`) waits on busy_timeout.
// Reads use a separate read-only pool and see the last committed state.
//
// The schema lives in numbered, embedded migrations (migrations/*.sql),
// recorded in schema_migrations and applied one IMMEDIATE transaction each.
// Open refuses a database with pending migrations unless Options.Migrate is
// set.
//
// Row conventions, shared with package postgres and checked by the
// conformance suite in storage/storagetest:
//   - times are stored as Unix nanoseconds (INTEGER), zero times as NULL;
//     they come back in UTC and exact. Times outside the years 1678–2262
//     cannot be stored and make the write fail;
//   - nil and empty slices, maps and byte slices all come back nil;
//   - provider names and aliases are lower-cased, aliases deduplicated,
//     stripped of the canonical name and returned sorted; every lookup name
//     is a row of provider_aliases, whose primary key makes names and
//     aliases unique together;
//   - CreateConnection stores Version 1; UpdateConnection keeps ID and
//     CreatedAt and sets Version to the stored one plus one;
//   - ListConnections orders by created_at, then id; ListAudit by time, then
//     id, newest first;
//   - AppendAudit requires a non-zero Time;
//   - DueForRefresh is the UNION of its reasons (one keep-alive arm per
//     provider), each pinned to an index of migration 0011 with INDEXED BY;
//     a zero ExpiringBefore matches nothing on its side, a bound outside the
//     storable years is clamped. A claiming call selects and claims in one
//     write transaction: SQLite's single writer makes it the only claimer.
package sqlite
