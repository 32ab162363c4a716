package httpapi

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
)

// objectCases are maps whose WriteJSONObject answer must equal WriteJSON's
// byte for byte.
var objectCases = []map[string]any{
	nil,
	{},
	{"access_token": "at-1", "token_type": "Bearer", "expires_in": int64(3599), "expires_at": "2030-01-01T00:00:00Z",
		"scope": "read write", "provider": "bench", "expires_at_source": "expires_in"},
	{"b": 1, "a": -2, "c": int64(math.MinInt64), "d": int64(math.MaxInt64), "t": true, "f": false, "n": nil},
	{"html": "<a href=\"x\">&amp;</a>", "ctl": "\x00\x01\b\f\n\r\t\x1f\x7f", "bs": `\\ \"`, "ls": "a\u2028b\u2029c",
		"bad": "\xff\xfe ok \xc3", "uni": "žluťoučký 🐎 kůň", "": "empty key", "ключ": "значение"},
	{"raw": json.RawMessage(`{ "a" : [1, 2, {"b":null}] , "<": "&" }`), "nilraw": json.RawMessage(nil),
		"num": json.RawMessage(` 3599 `), "str": json.RawMessage(`"x\u003cy"`)},
	{"float": 3599.0, "small": 1e-7, "big": 1e21, "neg": -0.5, "arr": []any{"a", 1.5, true, nil},
		"obj": map[string]any{"z": 1, "y": "<>"}, "strs": []string{"a", "b"}, "smap": map[string]string{"k": "v"}},
	{"Z": 1, "a": 2, "_": 3, "0": 4, "aa": 5, "a\x00": 6, "A": 7},
}

func writeJSONBody(t *testing.T, m map[string]any) (string, string) {
	t.Helper()
	old := httptest.NewRecorder()
	WriteJSON(old, 201, m)
	fast := httptest.NewRecorder()
	WriteJSONObject(fast, 201, m)
	if old.Code != fast.Code {
		t.Fatalf("status %d, WriteJSON %d", fast.Code, old.Code)
	}
	for _, h := range []string{"Content-Type", "Cache-Control"} {
		if old.Header().Get(h) != fast.Header().Get(h) {
			t.Fatalf("%s %q, WriteJSON %q", h, fast.Header().Get(h), old.Header().Get(h))
		}
	}
	return fast.Body.String(), old.Body.String()
}

func TestWriteJSONObjectMatchesWriteJSON(t *testing.T) {
	for i, m := range objectCases {
		got, want := writeJSONBody(t, m)
		if got != want {
			t.Errorf("case %d:\n got %q\nwant %q", i, got, want)
		}
	}
}

func TestWriteJSONObjectUnencodableValue(t *testing.T) {
	for _, m := range []map[string]any{
		{"a": "ok", "nan": math.NaN()},
		{"raw": json.RawMessage(`{"a":`)},
		{"raw": json.RawMessage{}},
		{"ch": make(chan int)},
	} {
		got, want := writeJSONBody(t, m)
		if got != want || got != "" {
			t.Errorf("%v: got %q, WriteJSON %q; want both empty", m, got, want)
		}
	}
}

func TestAppendJSONStringEveryByte(t *testing.T) {
	var all strings.Builder
	for b := 0; b < 256; b++ {
		all.WriteByte(byte(b))
	}
	for _, s := range []string{all.String(), "\u2028\u2029\u2027\u202a", "\xe2\x80", "\xed\xa0\x80", "\U0010ffff"} {
		got := string(appendJSONString(nil, s))
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimSuffix(buf.String(), "\n"); got != want {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
	}
}

func FuzzWriteJSONObject(f *testing.F) {
	f.Add("access_token", "at-1", "scope", "a b", int64(3599), []byte(`{"x":[1,"<"]}`))
	f.Add("k\u2028", "\xff<&>\x00", "", "\"\\", int64(-1), []byte(` null `))
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string, n int64, raw []byte) {
		m := map[string]any{k1: v1, k2: v2, "n": n, "raw": json.RawMessage(raw)}
		got, want := writeJSONBody(t, m)
		if got != want {
			t.Fatalf("got %q\nwant %q", got, want)
		}
	})
}

func BenchmarkWriteJSONTokenAnswer(b *testing.B) {
	m := objectCases[2]
	for _, tc := range []struct {
		name  string
		write func(*httptest.ResponseRecorder)
	}{
		{"WriteJSON", func(w *httptest.ResponseRecorder) { WriteJSON(w, 200, m) }},
		{"WriteJSONObject", func(w *httptest.ResponseRecorder) { WriteJSONObject(w, 200, m) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			w := httptest.NewRecorder()
			for b.Loop() {
				w.Body.Reset()
				tc.write(w)
			}
		})
	}
}
