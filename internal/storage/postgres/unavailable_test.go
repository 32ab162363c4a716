package postgres

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dromos-dev/dromos/internal/storage"
)

// Errors after which the same request may work shortly are
// storage.ErrUnavailable (503 with Retry-After); others are not.
func TestUnavailableCodes(t *testing.T) {
	for code, want := range map[string]bool{
		"08006": true, "08001": true, // connection failure
		"53300": true, "53100": true, "53200": true, // too many connections, disk full, out of memory
		"57P01": true, "57P02": true, "57P03": true, // shutdown, crash shutdown, starting up
		"57014": true,                // statement timeout
		"25006": true,                // read-only after a failover
		"40001": true, "40P01": true, // serialization failure, deadlock
		"23505": false, "22021": false, "42P01": false, "23503": false,
	} {
		err := wrap("op", fmt.Errorf("driver: %w", &pgconn.PgError{Code: code}))
		if got := errors.Is(err, storage.ErrUnavailable); got != want {
			t.Errorf("SQLSTATE %s: unavailable %v, want %v", code, got, want)
		}
	}
}
