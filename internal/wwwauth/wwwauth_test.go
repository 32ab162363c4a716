package wwwauth_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/dromos-dev/dromos/internal/wwwauth"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name   string
		in     []string
		want   []wwwauth.Challenge
		broken bool
	}{
		{name: "MCP bearer with metadata", in: []string{`Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="files:read files:write"`},
			want: []wwwauth.Challenge{{Scheme: "Bearer", Params: map[string]string{
				"resource_metadata": "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", "scope": "files:read files:write"}}}},
		{name: "insufficient scope", in: []string{`Bearer error="insufficient_scope", scope="a b", error_description="need more"`},
			want: []wwwauth.Challenge{{Scheme: "Bearer", Params: map[string]string{"error": "insufficient_scope", "scope": "a b", "error_description": "need more"}}}},
		{name: "bare scheme", in: []string{"Bearer"}, want: []wwwauth.Challenge{{Scheme: "Bearer", Params: map[string]string{}}}},
		{name: "unquoted values, odd spacing", in: []string{`Bearer  realm = example ,error=invalid_token`},
			want: []wwwauth.Challenge{{Scheme: "Bearer", Params: map[string]string{"realm": "example", "error": "invalid_token"}}}},
		{name: "two challenges in one value", in: []string{`Basic realm="x", Bearer scope="s"`},
			want: []wwwauth.Challenge{{Scheme: "Basic", Params: map[string]string{"realm": "x"}}, {Scheme: "Bearer", Params: map[string]string{"scope": "s"}}}},
		{name: "repeated header", in: []string{`Basic realm="x"`, `Bearer`},
			want: []wwwauth.Challenge{{Scheme: "Basic", Params: map[string]string{"realm": "x"}}, {Scheme: "Bearer", Params: map[string]string{}}}},
		{name: "token68", in: []string{`Negotiate abc+/def==, Bearer`},
			want: []wwwauth.Challenge{{Scheme: "Negotiate", Params: map[string]string{}, Token68: "abc+/def=="}, {Scheme: "Bearer", Params: map[string]string{}}}},
		{name: "escaped quote", in: []string{`Bearer realm="a \"b\" c"`},
			want: []wwwauth.Challenge{{Scheme: "Bearer", Params: map[string]string{"realm": `a "b" c`}}}},
		{name: "names without case", in: []string{`Bearer Scope="x"`},
			want: []wwwauth.Challenge{{Scheme: "Bearer", Params: map[string]string{"scope": "x"}}}},
		{name: "empty", in: []string{""}, want: nil},
		{name: "unterminated quote", in: []string{`Bearer scope="abc`}, broken: true},
		{name: "duplicate parameter", in: []string{`Bearer scope="a", scope="b"`}, broken: true},
		{name: "missing value", in: []string{`Bearer scope=`}, broken: true},
		{name: "garbage after value", in: []string{`Bearer scope="a" "b"`}, broken: true},
		{name: "control character", in: []string{"Bearer scope=\"a\x01\""}, broken: true},
		{name: "starts with separator only", in: []string{`=x`}, broken: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := wwwauth.Parse(tc.in...)
			if tc.broken {
				if !errors.Is(err, wwwauth.ErrMalformed) {
					t.Fatalf("Parse(%q) = %+v, %v; want ErrMalformed", tc.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse(%q)\n got %+v\nwant %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestBearer(t *testing.T) {
	c, ok, err := wwwauth.Bearer(`Basic realm="x"`, `bearer error="insufficient_scope", scope="write"`)
	if err != nil || !ok || c.Param("Scope") != "write" || c.Param("error") != "insufficient_scope" {
		t.Fatalf("Bearer = %+v, %v, %v", c, ok, err)
	}
	if _, ok, err := wwwauth.Bearer(`Basic realm="x"`); ok || err != nil {
		t.Fatalf("Bearer without a bearer challenge = %v, %v", ok, err)
	}
}

func TestParseBoundsInput(t *testing.T) {
	long := make([]byte, wwwauth.MaxHeaderLen+1)
	for i := range long {
		long[i] = 'a'
	}
	if _, err := wwwauth.Parse(string(long)); !errors.Is(err, wwwauth.ErrMalformed) {
		t.Fatalf("oversized header: %v", err)
	}
	many := ""
	for i := 0; i < 40; i++ {
		many += "Bearer, "
	}
	if _, err := wwwauth.Parse(many); !errors.Is(err, wwwauth.ErrMalformed) {
		t.Fatalf("too many challenges: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`Bearer resource_metadata="https://x/.well-known/oauth-protected-resource", scope="a b"`,
		`Bearer error="insufficient_scope", scope="x"`,
		`Basic realm="x", Bearer`,
		`Negotiate abc==`,
		`Bearer realm="a \"b\""`,
		`,,`, `=`, `Bearer scope="`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := wwwauth.Parse(s)
		if err != nil {
			return
		}
		for _, c := range cs {
			if c.Scheme == "" {
				t.Fatalf("empty scheme from %q", s)
			}
			if len(c.Params) > 32 {
				t.Fatalf("%d params from %q", len(c.Params), s)
			}
		}
	})
}
