package bench

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// errBadPostgresURL is returned for a PostgreSQL URL of the wrong form. The
// URL may carry a password, so no message ever quotes it.
var errBadPostgresURL = errors.New(PostgresEnv + " must be a postgres:// or postgresql:// URL")

// scratchSchema is an empty schema made for one run.
type scratchSchema struct {
	base    string // for the schema's own DDL
	name    string
	url     string // base with search_path set to the schema
	version string // server_version, for the report
}

// createSchema makes a fresh schema in the database at base. The broker's
// sessions use it through the search_path run-time parameter, so a run
// never touches other tables and leaves nothing behind once dropped.
func createSchema(ctx context.Context, base string, random io.Reader) (*scratchSchema, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, errBadPostgresURL
	}
	var b [8]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return nil, fmt.Errorf("schema name: %w", err)
	}
	// pool_* parameters (pool_max_conns…) tune the broker's pgxpool; a
	// single connection would send them to the server as settings.
	admin := *u
	aq := admin.Query()
	for k := range aq {
		if strings.HasPrefix(k, "pool_") {
			aq.Del(k)
		}
	}
	admin.RawQuery = aq.Encode()
	s := &scratchSchema{base: admin.String(), name: "dromos_bench_" + hex.EncodeToString(b[:])}
	err = s.exec(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&s.version); err != nil {
			return err
		}
		_, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{s.name}.Sanitize())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("creating the scratch schema: %w", err)
	}
	q := u.Query()
	q.Set("search_path", s.name)
	u.RawQuery = q.Encode()
	s.url = u.String()
	return s, nil
}

// drop removes the schema and everything the broker made in it.
func (s *scratchSchema) drop(ctx context.Context) error {
	return s.exec(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{s.name}.Sanitize()+" CASCADE")
		return err
	})
}

func (s *scratchSchema) exec(ctx context.Context, fn func(context.Context, *pgx.Conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.base)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return fn(ctx, conn)
}
