package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
	"github.com/dromos-dev/dromos/internal/vault"
)

// The shape of a seeded database (see seedPlan).
const (
	// seedTokenLifetime is the fake provider's access-token lifetime.
	seedTokenLifetime = time.Hour
	// seedIdleLifetime is the bench provider's refresh_token_idle_lifetime:
	// Microsoft's 90 days. The broker keeps a grant alive after two thirds
	// of it unrefreshed (seedKeepAliveAfter).
	seedIdleLifetime   = 90 * 24 * time.Hour
	seedKeepAliveAfter = seedIdleLifetime / 3 * 2
	// seedAheadWindow is the broker's refresh-ahead window (the default).
	seedAheadWindow = 2 * time.Minute
	// seedReadMargin is the broker's refresh margin on read (the default).
	seedReadMargin    = time.Minute
	seedRefreshPrefix = "rt-seed-"
)

// seedPlan lays out the rows of a scale database at seeding time at:
//
//   - connections 0 … hot-1 are the hot set: read in the last minute, their
//     one-hour access tokens obtained within the last hour and expiring
//     evenly spread over the next one (connection i at (i+½)/hot of it), as
//     in a steady state where each is refreshed once an hour;
//   - the others are idle: never read since they were made, their access
//     tokens long expired, their last refresh evenly spread over the keep-alive
//     period (60 days back to now), as the broker's keep-alive leaves them;
//     so a steady trickle of them, cold ÷ 60 days, comes due for keep-alive.
//
// Every row is what the broker writes for an active connection: the token
// set sealed with the vault, bound to the connection's owner (AAD version 2).
type seedPlan struct {
	rows, hot  int
	at         time.Time
	prefix     string // 8 hex digits: the ids are UUID-shaped, the broker checks
	providerID string
}

func (p seedPlan) cold() int { return p.rows - p.hot }

func (p seedPlan) id(i int) string { return fmt.Sprintf("%s-0000-4000-8000-%012d", p.prefix, i) }

// index is the connection number of a seeded refresh token, or -1.
func seedIndex(refreshToken string) int {
	s, ok := strings.CutPrefix(refreshToken, seedRefreshPrefix)
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return i
}

// expiry is when connection i's seeded access token expires.
func (p seedPlan) expiry(i int) time.Time {
	if i < p.hot {
		return p.at.Add(time.Duration((float64(i) + 0.5) / float64(p.hot) * float64(seedTokenLifetime)))
	}
	return p.lastRefresh(i).Add(seedTokenLifetime)
}

// lastRefresh is when connection i's token was last refreshed.
func (p seedPlan) lastRefresh(i int) time.Time {
	if i < p.hot {
		return p.expiry(i).Add(-seedTokenLifetime)
	}
	j := i - p.hot
	step := float64(seedKeepAliveAfter) / float64(p.cold())
	return p.at.Add(-seedKeepAliveAfter + time.Duration((float64(j)+0.5)*step))
}

// expectedAhead is how many hot tokens come into the refresh-ahead window
// during [from, to): the refreshes the hot set needs then.
func (p seedPlan) expectedAhead(from, to time.Time) int {
	n := 0
	for i := range p.hot {
		if due := p.expiry(i).Add(-seedAheadWindow); !due.Before(from) && due.Before(to) {
			n++
		}
	}
	return n
}

// readDue is how many hot tokens a read at t refreshes itself: within the
// broker's refresh margin (60 s) of expiry.
func (p seedPlan) readDue(t time.Time) int {
	n := 0
	for i := range p.hot {
		if p.expiry(i).Add(-seedReadMargin).Before(t) {
			n++
		}
	}
	return n
}

// expectedKeepAlive is how many idle connections pass the keep-alive age
// during [from, to).
func (p seedPlan) expectedKeepAlive(from, to time.Time) int {
	n := 0
	for i := p.hot; i < p.rows; i++ {
		if due := p.lastRefresh(i).Add(seedKeepAliveAfter); !due.Before(from) && due.Before(to) {
			n++
		}
	}
	return n
}

// seed writes the plan's rows with COPY, then ANALYZEs the tables as
// autovacuum would after such a load, so the planner sees the real sizes.
func seed(ctx context.Context, dbURL string, p seedPlan, keys []vault.Key) error {
	ring, err := vault.NewKeyring(keys[0], keys[1:]...)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	created := p.at.Add(-seedIdleLifetime)
	scopes := []string{"read", "write"}
	conns := make([]storage.Connection, p.rows)
	for i := range p.rows {
		conns[i] = storage.Connection{ID: p.id(i), UserID: "user-" + strconv.Itoa(i), ClientName: agentName,
			ProviderID: p.providerID, ProviderName: providerName}
	}
	i := 0
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"connections"},
		[]string{"id", "workspace_id", "user_id", "client_name", "provider_id", "provider_name", "scopes", "return_url",
			"status", "created_at", "updated_at", "activated_at", "last_refresh_at", "last_read_at"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == p.rows {
				return nil, nil
			}
			c := conns[i]
			var lastRead any
			if i < p.hot {
				lastRead = p.at.Add(-time.Duration(i%60) * time.Second)
			}
			last := p.lastRefresh(i)
			i++
			return []any{c.ID, "", c.UserID, c.ClientName, c.ProviderID, c.ProviderName, scopes, returnURL,
				storage.StatusActive, created, last, created, last, lastRead}, nil
		}))
	if err != nil {
		return fmt.Errorf("seeding connections: %w", err)
	}
	i = 0
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"tokens"},
		[]string{"connection_id", "ciphertext", "aad_version", "expires_at", "expiry_source", "created_at", "updated_at"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == p.rows {
				return nil, nil
			}
			c, exp, last := conns[i], p.expiry(i), p.lastRefresh(i)
			set := tokenset.Set{AccessToken: fmt.Sprintf("at-seed-%040d", i), TokenType: "Bearer",
				RefreshToken: seedRefreshPrefix + strconv.Itoa(i), Scope: fakeScope, Expiry: exp.UTC(),
				ExpirySource: tokenset.ExpiryFromExpiresIn, ObtainedAt: last.UTC()}
			sealed, err := tokenset.Seal(ring, c, set)
			if err != nil {
				return nil, err
			}
			i++
			return []any{c.ID, sealed, tokenset.AADVersion, exp, tokenset.ExpiryFromExpiresIn, last, last}, nil
		}))
	if err != nil {
		return fmt.Errorf("seeding tokens: %w", err)
	}
	if _, err := conn.Exec(ctx, "ANALYZE connections, tokens"); err != nil {
		return fmt.Errorf("analyzing: %w", err)
	}
	return nil
}

// tableSizes is the on-disk size (pg_total_relation_size: heap, TOAST and
// indexes) of the connections and tokens tables.
func tableSizes(ctx context.Context, dbURL string) (connections, tokens int64, err error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	err = conn.QueryRow(ctx, `SELECT pg_total_relation_size('connections'::regclass), pg_total_relation_size('tokens'::regclass)`).
		Scan(&connections, &tokens)
	return connections, tokens, err
}

// providerID looks the bench provider's id up.
func lookupProviderID(ctx context.Context, dbURL string) (string, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var id string
	err = conn.QueryRow(ctx, `SELECT id FROM providers WHERE name = $1`, providerName).Scan(&id)
	return id, err
}
