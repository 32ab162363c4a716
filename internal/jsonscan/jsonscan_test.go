package jsonscan_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/dromos-dev/dromos/internal/jsonscan"
)

var seeds = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a":"x","b":[1,{"c":"]}"}],"d":null,"e":true,"f":-1.5e3}`,
	`{"a":"\"}\\"}`, `{"a":1,"a":2}`, `{"é":1}`, `{"a\u0062":1}`, `{"A":1}`, `[]`, `"x"`, `{"a":1}x`,
	`{"a":}`, `{"a" 1}`, ``, `{"a":"` + "\x01" + `"}`, "{\n\t\"a\" :\r 1 \n}",
}

// Whenever Members accepts an input, it must give exactly the members
// json.Unmarshal gives (later duplicates win in a map), with the same raw
// value bytes; and it must refuse whatever json.Unmarshal refuses.
func check(t *testing.T, in []byte) {
	got := map[string][]byte{}
	var order [][]byte
	ok := jsonscan.Members(in, func(name, value []byte) bool {
		got[string(name)] = value
		order = append(order, name)
		return true
	})
	var want map[string]json.RawMessage
	err := json.Unmarshal(in, &want)
	if !ok {
		return // the caller falls back to encoding/json
	}
	if err != nil || want == nil {
		t.Fatalf("%q: Members accepted what json.Unmarshal refuses (%v)", in, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%q: %d members, json.Unmarshal %d", in, len(got), len(want))
	}
	for k, v := range want {
		if !bytes.Equal(got[k], v) {
			t.Fatalf("%q: member %q = %q, json.Unmarshal %q", in, k, got[k], v)
		}
	}
	obj, ok := jsonscan.Object(in)
	if !ok || len(obj) != len(want) {
		t.Fatalf("%q: Object gave %d members (ok %v), json.Unmarshal %d", in, len(obj), ok, len(want))
	}
	for k, v := range want {
		if !bytes.Equal(obj[k], v) {
			t.Fatalf("%q: Object member %q = %q, json.Unmarshal %q", in, k, obj[k], v)
		}
	}
}

func TestMembersAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range seeds {
		check(t, []byte(s))
	}
	// Stopping early reports false.
	if jsonscan.Members([]byte(`{"a":1,"b":2}`), func(name, _ []byte) bool { return string(name) != "a" }) {
		t.Fatal("Members reported true after fn refused")
	}
	// Names with escapes or non-ASCII bytes are left to encoding/json.
	for _, s := range []string{`{"a\u0062":1}`, `{"é":1}`} {
		if jsonscan.Members([]byte(s), func(_, _ []byte) bool { return true }) {
			t.Fatalf("%s: fast path taken for a name encoding/json would rewrite", s)
		}
	}
}

func TestPlainString(t *testing.T) {
	for _, s := range []string{`"abc"`, `""`, `"a\"b"`, `"é"`, `"a\u0041"`, `abc`, `"`, `"x`, `1`} {
		got, ok := jsonscan.PlainString([]byte(s))
		if !ok {
			continue
		}
		var want string
		if err := json.Unmarshal([]byte(s), &want); err != nil || got != want {
			t.Fatalf("PlainString(%s) = %q, json.Unmarshal %q (%v)", s, got, want, err)
		}
	}
	if _, ok := jsonscan.PlainString([]byte(`"abc"`)); !ok {
		t.Fatal("a plain literal was not taken")
	}
}

func FuzzMembers(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) { check(t, in) })
}
