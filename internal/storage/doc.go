// Package storage defines the broker's persistence port: value types for
// providers, connections, sealed tokens and audit events, the sentinel errors
// backends return, and the Storage interface both backends implement
// (storage/postgres, storage/sqlite). The conformance suite in
// storage/storagetest is the definition of a correct backend.
package storage
