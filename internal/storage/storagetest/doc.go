// Package storagetest is the conformance suite of storage.Storage: the
// definition of a correct backend. A backend joins with a short test that
// calls Run with a function opening an empty store.
//
// The suite pins down what the interface leaves open, so that both backends
// behave alike:
//   - nil and empty Aliases, Scopes, Metadata, Detail and byte slices all
//     come back nil;
//   - times come back in UTC, equal to what was stored at least to the
//     microsecond; zero times stay zero;
//   - names and aliases come back lower-cased, aliases sorted, deduplicated
//     and without the canonical name;
//   - CreateConnection stores Version 1; UpdateConnection keeps ID and
//     CreatedAt and bumps Version whatever fn returns;
//   - ListProviders orders by name, ListConnections by CreatedAt then ID,
//     ListAudit by Time then ID, newest first;
//   - a TokenChange.Put for another connection is refused;
//   - DueForRefresh bounds are strict (a token expiring exactly at
//     expiringBefore is not due), a lease or retry time equal to now no
//     longer holds the connection back, a connection without a token row is
//     never due, and ids come soonest expiry first, unknown expiry last,
//     then by id, each once.
//
// PostgresURL gives PostgreSQL tests an isolated schema in the database named
// by DROMOS_TEST_POSTGRES_URL, and skips them when it is unset.
package storagetest
