package apikey

import (
	"errors"
	"testing"
)

func TestPresented(t *testing.T) {
	none := []string(nil)
	one := func(v string) []string { return []string{v} }
	cases := []struct {
		name          string
		auth, xapikey []string
		want          string
		err           error
	}{
		{"nothing", none, none, "", ErrMissing},
		{"bearer", one("Bearer k1"), none, "k1", nil},
		{"bearer any case, spaces", one("  bEARER   k1 "), none, "k1", nil},
		{"x-api-key", none, one(" k1 "), "k1", nil},
		{"both, same key", one("Bearer k1"), one("k1"), "k1", nil},
		{"both, different keys", one("Bearer k1"), one("k2"), "", ErrAmbiguous},
		{"two x-api-key", none, []string{"k1", "k1"}, "", ErrAmbiguous},
		{"two x-api-key, different", none, []string{"k1", "k2"}, "", ErrAmbiguous},
		{"two authorization", []string{"Bearer k1", "Bearer k2"}, none, "", ErrAmbiguous},
		{"basic scheme", one("Basic azE="), none, "", ErrMissing},
		{"basic scheme beside a key", one("Basic azE="), one("k1"), "", ErrMissing},
		{"bearer without key", one("Bearer "), none, "", ErrMissing},
		{"scheme only", one("Bearer"), none, "", ErrMissing},
		{"empty x-api-key", none, one("  "), "", ErrMissing},
		{"empty x-api-key beside bearer", one("Bearer k1"), one(""), "k1", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Presented(tc.auth, tc.xapikey)
			if got != tc.want || !errors.Is(err, tc.err) {
				t.Fatalf("got %q %v, want %q %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func FuzzPresented(f *testing.F) {
	f.Add("Bearer k", "k")
	f.Add("", "k")
	f.Fuzz(func(t *testing.T, auth, key string) {
		got, err := Presented([]string{auth}, []string{key})
		if err == nil && got == "" {
			t.Fatal("empty key accepted")
		}
	})
}
