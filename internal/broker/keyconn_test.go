package broker_test

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/metadata"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
	"github.com/dromos-dev/dromos/internal/storage"
)

// Keys as an agent would submit them; each is long and unique enough to
// find in a dump.
const (
	goodKey     = "sk-good-6f1e0c8a9b2d4e7f"
	rotatedKey  = "sk-rotated-0a9b8c7d6e5f4321"
	refusedKey  = "sk-refused-13579bdf2468ace0"
	basicPasswd = "basic-password-77aa88bb99cc"
)

// keyVerifier is a provider's verification endpoint that accepts the keys
// in accept as "Authorization: Bearer KEY" and answers 401 otherwise.
func keyVerifier(t *testing.T, accept ...string) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		for _, k := range accept {
			if r.URL.Path == "/v1/models" && r.Header.Get("Authorization") == "Bearer "+k {
				_, _ = w.Write([]byte(`{"data":[]}`))
				return
			}
		}
		// A provider echoing the key in its error must not leak it either.
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid key ` + r.Header.Get("Authorization") + `"}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestKeyConnectionsThroughGateway(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL)
		verifier, calls := keyVerifier(t, goodKey, rotatedKey)
		s.h.registerProvider(map[string]any{"name": "openai", "auth_mode": "api_key", "credential": map[string]any{
			"injection": map[string]any{"header": "Authorization", "value_prefix": "Bearer "},
			"verify":    map[string]any{"url": verifier.URL + "/v1/models"}}})
		s.h.registerProvider(map[string]any{"name": "twilio", "auth_mode": "basic"})
		var answers []string // every answer but the owner's token reads
		keep := func(v any) { answers = append(answers, toJSON(v)) }

		// An accepted key: active at once, no consent.
		var ok map[string]any
		if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
			"user_id": "alice", "provider_name": "openai", "return_url": s.retURL,
			"credentials": map[string]string{"api_key": goodKey}}, &ok); st != http.StatusOK {
			t.Fatalf("request with a good key: %d %v", st, ok)
		}
		keep(ok)
		id := ok["connection_id"].(string)
		if ok["status"] != "active" || ok["authUrl"] != "" || calls.Load() != 1 {
			t.Fatalf("good key: %v after %d verification calls", ok, calls.Load())
		}
		var chk map[string]any
		s.rest(t, "GET", "/v1/check-connection/"+id, "/v1/check-connection/{connection_id}", agentKey, nil, &chk)
		keep(chk)
		if chk["status"] != "active" {
			t.Fatalf("check: %v", chk)
		}
		tok := map[string]any{}
		if st := s.rest(t, "GET", "/v1/token/"+id, "/v1/token/{connection_id}", agentKey, nil, &tok); st != http.StatusOK {
			t.Fatalf("token read: %d %v", st, tok)
		}
		cred, _ := tok["credential"].(map[string]any)
		if tok["access_token"] != goodKey || tok["token_type"] != "Bearer" || cred["value"] != goodKey ||
			cred["header"] != "Authorization" || cred["value_prefix"] != "Bearer " || cred["type"] != "api_key" {
			t.Fatalf("token read: %v", tok)
		}
		// Another agent learns nothing, not even that the connection exists.
		var other map[string]any
		if st := s.rest(t, "GET", "/v1/token/"+id, "/v1/token/{connection_id}", "other-agent-key-0001", nil, &other); st != http.StatusNotFound {
			t.Fatalf("other agent's token read: %d %v", st, other)
		}
		keep(other)

		// A refused key: the connection is failed with a reason, and the
		// key is not kept.
		var bad map[string]any
		if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
			"user_id": "alice", "provider_name": "openai", "return_url": s.retURL,
			"credentials": map[string]string{"api_key": refusedKey}}, &bad); st != http.StatusOK {
			t.Fatalf("request with a refused key: %d %v", st, bad)
		}
		keep(bad)
		badID := bad["connection_id"].(string)
		if bad["status"] != "failed" || bad["status_reason"] != "credential_refused" {
			t.Fatalf("refused key: %v", bad)
		}
		s.rest(t, "GET", "/v1/check-connection/"+badID, "/v1/check-connection/{connection_id}", agentKey, nil, &chk)
		keep(chk)
		if chk["status"] != "failed" || chk["reason"] != "credential_refused" {
			t.Fatalf("check of the refused connection: %v", chk)
		}
		s.h.assertNoToken(badID)
		var refusedRead map[string]any
		if st := s.rest(t, "GET", "/v1/token/"+badID, "/v1/token/{connection_id}", agentKey, nil, &refusedRead); st != http.StatusConflict {
			t.Fatalf("token of a refused connection: %d %v", st, refusedRead)
		}
		keep(refusedRead)

		// Rotation: a good key brings the failed connection back under the
		// same id; a refused one leaves an active connection as it was.
		var rot map[string]any
		if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
			"user_id": "alice", "provider_name": "openai", "return_url": s.retURL, "connection_id": badID,
			"credentials": map[string]string{"api_key": rotatedKey}}, &rot); st != http.StatusOK || rot["connection_id"] != badID || rot["status"] != "active" {
			t.Fatalf("rotation: %d %v", st, rot)
		}
		keep(rot)
		var rotBad map[string]any
		if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
			"user_id": "alice", "provider_name": "openai", "return_url": s.retURL, "connection_id": badID,
			"credentials": map[string]string{"api_key": refusedKey}}, &rotBad); st != http.StatusBadRequest || rotBad["code"] != "credential_refused" {
			t.Fatalf("rotation to a refused key: %d %v", st, rotBad)
		}
		keep(rotBad)
		tok = map[string]any{}
		s.rest(t, "GET", "/v1/token/"+badID, "/v1/token/{connection_id}", agentKey, nil, &tok)
		if tok["access_token"] != rotatedKey {
			t.Fatalf("after rotations the token read gives %v", tok["access_token"])
		}
		// Another agent cannot rotate it.
		var steal map[string]any
		if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", "other-agent-key-0001", map[string]any{
			"user_id": "alice", "provider_name": "openai", "return_url": s.retURL, "connection_id": badID,
			"credentials": map[string]string{"api_key": goodKey}}, &steal); st != http.StatusNotFound {
			t.Fatalf("another agent rotated the key: %d %v", st, steal)
		}
		keep(steal)

		// Basic credentials over gRPC; the token carries them in extras.
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+agentKey)
		g, err := s.grpc.RequestConnection(ctx, &dromosv1.RequestConnectionRequest{UserId: "bob", ProviderName: "twilio",
			ReturnUrl: s.retURL, Credentials: map[string]string{"username": "AC0001", "password": basicPasswd}})
		if err != nil || g.GetStatus() != "active" || g.GetAuthUrl() != "" {
			t.Fatalf("gRPC basic: %v %v", g, err)
		}
		keep(map[string]any{"grpc": g.String()})
		gt, err := s.grpc.GetToken(ctx, &dromosv1.GetTokenRequest{ConnectionId: g.GetConnectionId()})
		if err != nil || gt.GetTokenType() != "Basic" || !strings.Contains(gt.GetExtras()["credential"], basicPasswd) {
			t.Fatalf("gRPC basic token: %v %v", gt, err)
		}
		// Bad input names the field, never the value.
		var short map[string]any
		if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
			"user_id": "alice", "provider_name": "twilio", "return_url": s.retURL,
			"credentials": map[string]string{"username": "AC0001:" + basicPasswd, "password": basicPasswd}}, &short); st != http.StatusBadRequest {
			t.Fatalf("username with a colon: %d %v", st, short)
		}
		keep(short)
		var broker map[string]any
		s.h.do("GET", "/connections/"+id, nil, &broker)
		keep(broker)

		secrets := []string{goodKey, rotatedKey, refusedKey, basicPasswd}
		s.h.broker.FlushAudit()
		events, err := s.h.store.ListAudit(context.Background(), storage.AuditFilter{Limit: 1000})
		if err != nil || len(events) == 0 {
			t.Fatalf("audit: %d %v", len(events), err)
		}
		var types []string
		for _, e := range events {
			types = append(types, e.Type)
		}
		if !strings.Contains(strings.Join(types, " "), "connection.credential_rotated") {
			t.Fatalf("no rotation in the audit: %v", types)
		}
		dump := dumpDatabase(t, dbURL)
		if !strings.Contains(dump, "openai") || !strings.Contains(dump, id) {
			t.Fatal("the dump holds no connection: it would prove nothing")
		}
		haystacks := map[string]string{"broker log": s.h.logs.String(), "gateway log": s.gwLogs.String(),
			"audit rows": toJSON(events), "other answers": strings.Join(answers, "\n"), "database": dump}
		for where, text := range haystacks {
			for _, secret := range secrets {
				if strings.Contains(text, secret) || strings.Contains(text, hex.EncodeToString([]byte(secret))) {
					t.Errorf("%s holds the credential %s…", where, secret[:8])
				}
			}
		}
	})
}

// dumpDatabase is the text of every row of every table of the broker's
// database, byte columns also in hex (as psql shows them).
func dumpDatabase(t *testing.T, dbURL string) string {
	t.Helper()
	var b strings.Builder
	if path, ok := strings.CutPrefix(dbURL, "sqlite:"); ok {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		tables := queryStrings(t, db, "SELECT name FROM sqlite_master WHERE type = 'table'")
		for _, table := range tables {
			rows, err := db.Query(`SELECT * FROM "` + table + `"`)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&b, "%s:", table)
				for _, v := range vals {
					if raw, ok := v.([]byte); ok {
						fmt.Fprintf(&b, " %s %x", raw, raw)
					} else {
						fmt.Fprintf(&b, " %v", v)
					}
				}
				b.WriteByte('\n')
			}
			rows.Close()
		}
		return b.String()
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	schema := q.Get("search_path")
	q.Del("pool_max_conns")
	u.RawQuery = q.Encode()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) == 0 {
		t.Fatalf("tables of %s: %v %v", schema, tables, err)
	}
	for _, table := range tables {
		rows, err := conn.Query(ctx, "SELECT t::text FROM "+pgx.Identifier{schema, table}.Sanitize()+" t")
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			fmt.Fprintf(&b, "%s: %s\n", table, l)
		}
	}
	return b.String()
}

func queryStrings(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}
