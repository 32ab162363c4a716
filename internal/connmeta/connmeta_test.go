package connmeta

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func TestNormalizeKeepsValuesAsGiven(t *testing.T) {
	in := map[string]json.RawMessage{
		"priority": raw(`1`),
		"ratio":    raw(`1.50`),
		"big":      raw(`12345678901234567890123`),
		"exp":      raw(`1e2`),
		"flag":     raw(`true`),
		"none":     raw(`null`),
		"label":    raw(`"tier <gold> & \u00e9"`),
		"list":     raw(`[3, "b", {"z": 1, "a": 2}]`),
		"nested":   raw("{\n  \"zeta\": {\"b\": 1, \"a\": [true, null]},\n  \"alpha\": \"x\"\n}"),
		"dup":      raw(`{"k":1,"k":2}`),
	}
	got, err := Normalize(in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"priority": `1`, "ratio": `1.50`, "big": `12345678901234567890123`, "exp": `1e2`, "flag": `true`, "none": `null`,
		"label":  `"tier <gold> & \u00e9"`,
		"list":   `[3,"b",{"z":1,"a":2}]`,
		"nested": `{"zeta":{"b":1,"a":[true,null]},"alpha":"x"}`,
		"dup":    `{"k":1,"k":2}`,
	}
	for k, w := range want {
		if string(got[k]) != w {
			t.Errorf("%s = %s, want %s", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d keys, want %d", len(got), len(want))
	}
	enc := string(Encode(got))
	if !strings.HasPrefix(enc, `{"big":12345678901234567890123,"dup":{"k":1,"k":2},"exp":1e2,`) ||
		!strings.Contains(enc, `"label":"tier <gold> & \u00e9"`) {
		t.Errorf("Encode = %s", enc)
	}
	if m, err := Normalize(nil); m != nil || err != nil {
		t.Errorf("Normalize(nil) = %v, %v", m, err)
	}
}

func TestNormalizeRefuses(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	many := map[string]json.RawMessage{}
	for i := range MaxEntries + 1 {
		many[fmt.Sprintf("k%02d", i)] = raw(`1`)
	}
	for _, tc := range []struct {
		name string
		in   map[string]json.RawMessage
		want string
	}{
		{"too many entries", many, "metadata: at most 64 entries (got 65)"},
		{"empty key", map[string]json.RawMessage{"": raw(`1`)}, "metadata: keys must not be empty"},
		{"long key", map[string]json.RawMessage{strings.Repeat("k", MaxKeyLen+1): raw(`1`)},
			`metadata "` + strings.Repeat("k", 32) + `…": keys are at most 128 bytes`},
		{"control in key", map[string]json.RawMessage{"a\x1bb": raw(`1`)}, `metadata "a\x1bb": keys must not contain control characters or invalid UTF-8`},
		{"C1 in key", map[string]json.RawMessage{"a\u009bb": raw(`1`)}, `metadata "a\u009bb": keys must not contain control characters or invalid UTF-8`},
		{"too deep", map[string]json.RawMessage{"tree": raw(deep(MaxDepth + 1))}, `metadata "tree": value nests deeper than 8 arrays or objects`},
		{"deep objects", map[string]json.RawMessage{"o": raw(strings.Repeat(`{"a":`, 9) + "1" + strings.Repeat("}", 9))},
			`metadata "o": value nests deeper than 8 arrays or objects`},
		{"escape in string", map[string]json.RawMessage{"note": raw(`"\u001b]0;title\u0007"`)}, `metadata "note": value holds a string with a control character`},
		{"newline in string", map[string]json.RawMessage{"note": raw(`"a\nb"`)}, `metadata "note": value holds a string with a control character`},
		{"C1 in nested string", map[string]json.RawMessage{"n": raw(`{"a":["ok","\u0085"]}`)}, `metadata "n": value holds a string with a control character`},
		{"control in member name", map[string]json.RawMessage{"n": raw(`{"\u0007":1}`)}, `metadata "n": value holds a string with a control character`},
		{"raw C1 byte", map[string]json.RawMessage{"n": raw("\"a\x9bb\"")}, `metadata "n": value is not valid UTF-8`},
		{"not JSON", map[string]json.RawMessage{"n": raw(`{`)}, `metadata "n": value is not valid JSON`},
		{"two values", map[string]json.RawMessage{"n": raw(`1 2`)}, `metadata "n": value is not valid JSON`},
		{"empty value", map[string]json.RawMessage{"n": raw(``)}, `metadata "n": value is not valid JSON`},
		{"too large", map[string]json.RawMessage{"a": raw(`"` + strings.Repeat("x", 2000) + `"`), "b": raw(`"` + strings.Repeat("y", 2100) + `"`)},
			"metadata: larger than 4096 bytes encoded (got 4115)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Normalize(tc.in)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Normalize = %v, %v; want error %s", got, err, tc.want)
			}
			if got != nil {
				t.Fatalf("partial result %v", got)
			}
		})
	}
}

func TestNormalizeAtTheLimits(t *testing.T) {
	m := map[string]json.RawMessage{"tree": raw(strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth))}
	if _, err := Normalize(m); err != nil {
		t.Fatalf("depth %d refused: %v", MaxDepth, err)
	}
	// {"k":"…"} is 8 bytes of framing.
	m = map[string]json.RawMessage{"k": String(strings.Repeat("x", MaxSize-8))}
	if got, err := Normalize(m); err != nil || len(Encode(got)) != MaxSize {
		t.Fatalf("exactly %d bytes: %v", MaxSize, err)
	}
}

func TestStrings(t *testing.T) {
	m := FromStrings(map[string]string{"team": "a<b>", "q": `say "hi"`})
	if string(m["team"]) != `"a<b>"` || string(m["q"]) != `"say \"hi\""` {
		t.Fatalf("FromStrings = %s, %s", m["team"], m["q"])
	}
	if s, ok := AsString(m["q"]); !ok || s != `say "hi"` {
		t.Fatalf("AsString = %q, %v", s, ok)
	}
	if _, ok := AsString(raw(`1`)); ok {
		t.Fatal("AsString accepted a number")
	}
	if FromStrings(nil) != nil {
		t.Fatal("FromStrings(nil) is not nil")
	}
}
