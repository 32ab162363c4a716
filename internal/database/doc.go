// Package database opens the broker's storage backend named by DATABASE_URL:
// PostgreSQL for postgres:// and postgresql:// URLs, SQLite for sqlite:PATH,
// sqlite://PATH and file:PATH. It is the only place that knows both backends,
// so commands wire storage with one call.
//
// Messages about a rejected URL name at most its scheme, never the rest:
// DATABASE_URL usually carries a password.
package database
