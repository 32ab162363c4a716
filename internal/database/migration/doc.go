// Package migration reads a backend's numbered SQL migration files from an
// embedded file system. It knows nothing about any database: each backend
// applies the files itself, because locking and transaction rules differ
// between PostgreSQL and SQLite.
//
// Files are named NNNN_description.sql. Versions start at 1 and have no gaps,
// so a missing or renumbered file is caught at start-up rather than silently
// skipped in production.
package migration
