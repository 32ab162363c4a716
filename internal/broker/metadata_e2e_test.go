package broker_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
	"github.com/dromos-dev/dromos/internal/storage"
)

// postRaw sends body to the gateway byte for byte (json.Marshal would
// respell it) and returns the status and the answer.
func (s *stack) postRaw(t *testing.T, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.gwURL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+agentKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// metadataGiven is request-connection metadata of every JSON type, written
// the way an agent might: member order, number spellings, escapes and HTML
// characters that a re-encoding would change.
var metadataGiven = map[string]string{
	"priority": `1`,
	"ratio":    `1.50`,
	"big":      `12345678901234567890`,
	"exp":      `1e2`,
	"flag":     `false`,
	"none":     `null`,
	"label":    `"tier <gold> & co \u00e9"`,
	"tags":     `["b","a",{"z":1,"a":2}]`,
	"owner":    `{"zeta":{"b":1,"a":[true,null]},"alpha":"x","alpha":"y"}`,
}

func metadataBody(t *testing.T, s *stack) string {
	var b strings.Builder
	b.WriteString(`{"user_id":"alice","provider_name":"Example","scopes":["openid"],"return_url":"` + s.retURL + `","metadata":{`)
	first := true
	for k, v := range metadataGiven {
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(`"` + k + `": ` + v)
	}
	b.WriteString(`}}`)
	return b.String()
}

// Any JSON value is accepted as metadata and comes back as given from the
// gateway's check-connection (REST and gRPC) and the broker's connection
// API, on both storage backends.
func TestMetadataAnyJSONAsGiven(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL)
		st, raw := s.postRaw(t, "/v1/request-connection", metadataBody(t, s))
		if st != 200 {
			t.Fatalf("request-connection %d %s", st, raw)
		}
		var grant struct {
			ConnectionID string `json:"connection_id"`
		}
		_ = json.Unmarshal(raw, &grant)
		id := grant.ConnectionID

		same := func(where string, got map[string]json.RawMessage) {
			t.Helper()
			if len(got) != len(metadataGiven) {
				t.Fatalf("%s: %d keys, want %d: %v", where, len(got), len(metadataGiven), got)
			}
			for k, want := range metadataGiven {
				if string(got[k]) != want {
					t.Errorf("%s: metadata %q = %s, want %s", where, k, got[k], want)
				}
			}
		}
		var chk struct {
			Status   string                     `json:"status"`
			Metadata map[string]json.RawMessage `json:"metadata"`
		}
		if st := s.rest(t, "GET", "/v1/check-connection/"+id, "/v1/check-connection/{connection_id}", agentKey, nil, &chk); st != 200 || chk.Status != "pending" {
			t.Fatalf("check-connection %d %+v", st, chk)
		}
		same("gateway check-connection", chk.Metadata)
		var view struct {
			Metadata map[string]json.RawMessage `json:"metadata"`
		}
		if st := s.h.do("GET", "/connections/"+id, nil, &view); st != 200 {
			t.Fatalf("broker connection %d", st)
		}
		same("broker connection", view.Metadata)
		c, err := s.h.store.GetConnection(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		same("stored row", c.Metadata)

		// gRPC: the Struct carries the same values (as Struct numbers).
		ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+agentKey)
		g, err := s.grpc.CheckConnection(ctx, &dromosv1.CheckConnectionRequest{ConnectionId: id})
		if err != nil {
			t.Fatal(err)
		}
		fields := g.GetMetadata().GetFields()
		if len(fields) != len(metadataGiven) || fields["priority"].GetNumberValue() != 1 || fields["label"].GetStringValue() != "tier <gold> & co é" ||
			fields["owner"].GetStructValue().GetFields()["alpha"].GetStringValue() != "y" || fields["tags"].GetListValue().GetValues()[0].GetStringValue() != "b" {
			t.Fatalf("gRPC metadata %v", g.GetMetadata())
		}

		// gRPC requests: the string map and the Struct merge.
		values, _ := structpb.NewStruct(map[string]any{"priority": 2, "owner": map[string]any{"team": "red"}})
		gr, err := s.grpc.RequestConnection(ctx, &dromosv1.RequestConnectionRequest{UserId: "bob", ProviderName: "example",
			Scopes: []string{"openid"}, ReturnUrl: s.retURL, Metadata: map[string]string{"note": "hi"}, MetadataJson: values})
		if err != nil {
			t.Fatal(err)
		}
		c, err = s.h.store.GetConnection(t.Context(), gr.GetConnectionId())
		if err != nil || len(c.Metadata) != 3 || string(c.Metadata["note"]) != `"hi"` || string(c.Metadata["priority"]) != `2` ||
			string(c.Metadata["owner"]) != `{"team":"red"}` {
			t.Fatalf("gRPC request stored %v, %v", c.Metadata, err)
		}
		_, err = s.grpc.RequestConnection(ctx, &dromosv1.RequestConnectionRequest{UserId: "bob", ProviderName: "example",
			Scopes: []string{"openid"}, ReturnUrl: s.retURL, Metadata: map[string]string{"priority": "1"}, MetadataJson: values})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `metadata "priority": given in both metadata and metadata_json`) {
			t.Fatalf("key in both fields: %v", err)
		}
	})
}

// Metadata over the limits, or holding control characters, is refused with
// a message naming the key, before anything is stored.
func TestMetadataRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := newStack(t, dbURL)
		const valid = `"user_id":"alice","provider_name":"Example","scopes":["openid"],"return_url":"https://app.example.com/back"`
		deep := strings.Repeat("[", 9) + strings.Repeat("]", 9)
		many := make([]string, 65)
		for i := range many {
			many[i] = `"k` + strings.Repeat("x", i) + `":1`
		}
		for _, tc := range []struct{ name, metadata, msg string }{
			{"too deep", `{"tree":` + deep + `}`, `metadata "tree": value nests deeper than 8 arrays or objects`},
			{"too large", `{"a":"` + strings.Repeat("x", 3000) + `","b":"` + strings.Repeat("y", 1200) + `"}`, "metadata: larger than 4096 bytes encoded"},
			{"too many", `{` + strings.Join(many, ",") + `}`, "metadata: at most 64 entries"},
			{"escape sequence", `{"note":"\u001b[2J"}`, `metadata "note": value holds a string with a control character`},
			{"C1 in nested string", `{"n":{"deep":["\u009b31m"]}}`, `metadata "n": value holds a string with a control character`},
			{"reserved key", `{"provider.realmId":"1"}`, `metadata key "provider.realmId" is reserved`},
			{"not an object", `["a"]`, `field "metadata" must be an object`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, raw := s.postRaw(t, "/v1/request-connection", `{`+valid+`,"metadata":`+tc.metadata+`}`)
				var env struct{ Code, Message string }
				_ = json.Unmarshal(raw, &env)
				if st != 400 || env.Code != "bad_request" || !strings.Contains(env.Message, tc.msg) {
					t.Fatalf("got %d %s, want 400 bad_request with %q", st, raw, tc.msg)
				}
			})
		}
		// The broker's own API refuses the same (a caller that skips the
		// gateway gets no laxer rules).
		for _, md := range []string{`{"tree":` + deep + `}`, `{"note":"a\u0085b"}`} {
			body := map[string]any{"workspace_id": "w", "user_id": "u", "provider_name": "example", "scopes": []string{"openid"},
				"return_url": "https://app.example.com/back", "metadata": json.RawMessage(md)}
			var env struct{ Code, Message string }
			if st := s.h.do("POST", "/auth/consent-spec", body, &env); st != 400 || !strings.Contains(env.Message, "metadata ") {
				t.Fatalf("broker consent-spec with %s: %d %+v", md, st, env)
			}
		}
		if cs, err := s.h.store.ListConnections(t.Context(), storage.ConnectionFilter{}); err != nil || len(cs) != 0 {
			t.Fatalf("refused requests stored %d connections (%v)", len(cs), err)
		}
	})
}
