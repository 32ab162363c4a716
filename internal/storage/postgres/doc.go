// Package postgres is the PostgreSQL implementation of storage.Storage, built
// on pgx (pgxpool). It is the production backend: several broker processes
// may share one database.
//
// The schema lives in numbered, embedded migrations (migrations/*.sql),
// recorded in schema_migrations and applied one transaction each under a
// session advisory lock, so processes starting together do not race. Open
// refuses a database with pending migrations unless Options.Migrate is set.
//
// Row conventions, shared with package sqlite and checked by the conformance
// suite in storage/storagetest:
//   - zero times are stored as NULL; times come back in UTC with the
//     microsecond precision of timestamptz;
//   - nil and empty slices, maps and byte slices all come back nil;
//   - provider names and aliases are lower-cased, aliases deduplicated,
//     stripped of the canonical name and returned sorted;
//   - every lookup name (canonical name or alias) is a row of
//     provider_aliases, whose primary key makes names and aliases unique
//     together even between concurrent transactions;
//   - CreateConnection stores Version 1; UpdateConnection keeps ID and
//     CreatedAt and sets Version to the stored one plus one, whatever fn
//     returns;
//   - ListConnections orders by created_at, then id; ListAudit by time, then
//     id, newest first;
//   - AppendAudit requires a non-zero Time, since the storage layer has no
//     clock of its own;
//   - DueForRefresh is the UNION of its two reasons, each served by an index
//     of migration 0011 (which adds statistics on their expressions: the
//     planner takes none from a partial index); a zero ExpiringBefore
//     matches nothing on its side. A claiming call locks rows FOR NO KEY
//     UPDATE SKIP LOCKED, so replicas split the due connections; the
//     claim is a column of its own (refresh_claim_until), so it changes
//     neither Version nor UpdatedAt. TestBackgroundQueriesUseIndexes checks
//     the plans of the background queries on a seeded table;
//   - RecordReads skips rows another transaction holds locked.
package postgres
