package tokenset

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/provider"
)

// sealedSets are token sets as Seal encodes them; decodeSet must take its
// fast path for each.
func sealedSets() []Set {
	now := time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC)
	return []Set{
		{},
		New(&exchange.Token{AccessToken: "at", TokenType: "Bearer", RefreshToken: "rt", Scope: "a b", Expiry: now.Add(time.Hour)},
			provider.Profile{}, now),
		New(&exchange.Token{AccessToken: "eyJ.x.y", TokenType: "bearer", IDToken: "id.tok.en",
			Extra: map[string]any{"instance_url": "https://x.example/a?b=1&c=<d>", "n": 3599.0, "ok": true, "nil": nil,
				"list": []any{"a", 1.5, map[string]any{"k": "v"}}, "obj": map[string]any{"z": []any{}}}},
			provider.Profile{TokenLifetimeSeconds: 3600}, now),
		{AccessToken: "quote\" back\\ slash \n\t\x01 é \u2028 🐎", TokenType: "Bearer", Scope: "\xff", ExpirySource: ExpiryUnknown,
			Expiry: now.In(time.FixedZone("x", 3600)), ObtainedAt: now},
	}
}

// decodeCases are JSON texts, good and bad, on which decodeSet must agree
// with json.Unmarshal whenever it answers.
var decodeCases = []string{
	`{}`, ` { } `, `null`, `[]`, `"x"`, `1`, ``, `{`, `{"access_token":"a",}`,
	`{"access_token":"a","access_token":"b"}`,
	`{"ACCESS_TOKEN":"folded"}`, `{"Access_Token":"folded","token_type":"t"}`,
	`{"access\u005ftoken":"escaped name"}`, `{"unknown":1,"access_token":"a"}`,
	`{"access_token":null,"expiry":null,"extra":null,"obtained_at":null}`,
	`{"access_token":1}`, `{"access_token":"a\u0041\"b"}`, `{"access_token":"` + "\xff" + `"}`,
	`{"expiry":"2026-11-26T12:00:00Z"}`, `{"expiry":"2026-11-26T12:00:00+01:00"}`, `{"expiry":"yesterday"}`,
	`{"expiry":1}`, `{"expiry":{}}`, `{"obtained_at":"2026-11-26T12:00:00.5Z"}`,
	`{"extra":{"a":1,"b":[1,{"c":"}"}]}}`, `{"extra":[]}`, `{"extra":5}`, `{"extra":{"a":1},"extra":{"b":2}}`,
	` {"access_token" : "a" , "token_type":"Bearer" ,"extra" : { "k" : "v" } } `,
	`{"access_token":"a"} x`, `{"access_token":"a"}{}`,
}

func checkDecodeSet(t *testing.T, plain []byte) (fast bool) {
	t.Helper()
	got, ok := decodeSet(plain)
	if !ok {
		return false
	}
	var want Set
	if err := json.Unmarshal(plain, &want); err != nil {
		t.Fatalf("%q: decodeSet accepted what json.Unmarshal refuses: %v", plain, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %#v\nwant %#v", plain, got, want)
	}
	return true
}

func TestDecodeSetMatchesUnmarshal(t *testing.T) {
	for _, set := range sealedSets() {
		plain, err := json.Marshal(set)
		if err != nil {
			t.Fatal(err)
		}
		if !checkDecodeSet(t, plain) {
			t.Errorf("Seal's encoding %s did not take the fast path", plain)
		}
	}
	for _, c := range decodeCases {
		checkDecodeSet(t, []byte(c))
	}
}

func FuzzDecodeSet(f *testing.F) {
	for _, set := range sealedSets() {
		plain, _ := json.Marshal(set)
		f.Add(plain)
	}
	for _, c := range decodeCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, plain []byte) { checkDecodeSet(t, plain) })
}
