package brokerclient

import (
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/jsonscan"
)

// decodeCases are broker answers, good and bad, on which decodeMembers
// must agree with json.Unmarshal into a map[string]json.RawMessage.
var decodeCases = []string{
	`{"access_token":"at-1","expires_at":"2030-01-01T01:00:00Z","expires_at_source":"expires_in","expires_in":3599,"provider":"bench","scope":"read write","token_type":"Bearer"}` + "\n",
	` { "a" : "x\"y\\z" , "b":[1, {"c":"]}"}, "\u005d"], "c" : { "d" : { } } , "e":-1.5e+3,"f":true,"g":false,"h":null } `,
	`{}`, ` {} `, `{"a":1,"a":2}`, `{"a":{"x":1},"a":"y"}`, `{"":""}`,
	`{"tab\tin name":1}`, `{"esc\u0061ped":1}`, `{"nön-ascii":1}`, `{"a":"\ud83d\ude00 \u2028 ok"}`,
	`null`, `[]`, `[1]`, `"x"`, `1`, `true`, ``, ` `, `{`, `{"a"}`, `{"a":1,}`, `{"a":1}{"b":2}`,
	`{"a":1} x`, `{"a":"\x01"}`, `{"a":"` + "\xff" + `"}`, `{"` + "\xff" + `":1}`, `{"a":01}`, `{"a":[1,]}`,
	`{"a":1e}`, `{"a":tru}`, `{"a":"unterminated}`, `{"a":{"b":[{"c":[]}]}}`,
}

func checkDecode(t *testing.T, body []byte) {
	t.Helper()
	var want map[string]json.RawMessage
	wantErr := json.Unmarshal(body, &want)
	got, gotErr := decodeMembers(body)
	if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
		t.Fatalf("%q: error %v, json.Unmarshal %v", body, gotErr, wantErr)
	}
	if gotErr != nil {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %q\nwant %q", body, got, want)
	}
}

func TestDecodeMembersMatchesUnmarshal(t *testing.T) {
	for _, c := range decodeCases {
		checkDecode(t, []byte(c))
	}
}

func FuzzDecodeMembers(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkDecode(t, body) })
}

// TestTokenMemberFastPaths checks plainString and expiresIn's integer path
// against the json.Unmarshal calls they stand in for, and the expires_at
// read against json.Unmarshal into a time.Time.
func TestTokenMemberFastPaths(t *testing.T) {
	for _, v := range []string{`"at-1"`, `""`, `" ~!"`, `"a\"b"`, `"a\\b"`, `"\u0041"`, `"tab	"`, `"é"`, `"` + "\x7f" + `"`,
		`1`, `null`, `{}`, `"`, `x"`} {
		checkString(t, []byte(v))
	}
	for _, v := range []string{`0`, `3599`, `-1`, `1.5`, `1e3`, `"3599"`, `999999999999999999`, `9999999999999999999`,
		`"x"`, `true`, `[]`} {
		checkExpiresIn(t, []byte(v))
	}
	for _, v := range []string{`"2030-01-01T01:00:00Z"`, `"2030-01-01T01:00:00+02:00"`, `"2030-01-01"`, `"x"`, `1`, `{}`, `[]`, `true`} {
		var got, want time.Time
		gotErr := got.UnmarshalJSON([]byte(v))
		wantErr := json.Unmarshal([]byte(v), &want)
		if (gotErr == nil) != (wantErr == nil) || !got.Equal(want) || got.Location().String() != want.Location().String() {
			t.Errorf("expires_at %s: %v %v, json.Unmarshal %v %v", v, got, gotErr, want, wantErr)
		}
	}
}

func checkString(t *testing.T, v []byte) {
	t.Helper()
	got, ok := jsonscan.PlainString(v)
	if !ok {
		return
	}
	var want string
	if err := json.Unmarshal(v, &want); err != nil || got != want {
		t.Fatalf("PlainString(%q) = %q, json.Unmarshal %q, %v", v, got, want, err)
	}
}

// expiresInByNumber is expiresIn without its integer fast path.
func expiresInByNumber(v json.RawMessage) (int64, error) {
	var n json.Number
	if err := json.Unmarshal(v, &n); err != nil {
		return 0, err
	}
	if i, err := n.Int64(); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil || f < 0 || f > 1<<53 {
		return 0, strconv.ErrSyntax
	}
	return int64(f), nil
}

func checkExpiresIn(t *testing.T, v []byte) {
	t.Helper()
	if !json.Valid(v) {
		return // members are always valid JSON values
	}
	got, gotErr := expiresIn(v)
	want, wantErr := expiresInByNumber(v)
	if (gotErr == nil) != (wantErr == nil) || got != want {
		t.Fatalf("expiresIn(%s) = %d, %v; json.Number path %d, %v", v, got, gotErr, want, wantErr)
	}
}

func FuzzTokenMembers(f *testing.F) {
	f.Add([]byte(`"at-1"`))
	f.Add([]byte(`3599`))
	f.Fuzz(func(t *testing.T, v []byte) {
		checkString(t, v)
		checkExpiresIn(t, v)
	})
}
