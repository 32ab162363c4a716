package vault_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/vault"
)

func TestParseKey(t *testing.T) {
	// 0xfb 0xff at the start make the standard and URL encodings differ.
	var want [32]byte
	want[0], want[1] = 0xfb, 0xff
	for i := 2; i < 32; i++ {
		want[i] = byte(i * 7)
	}
	std := base64.StdEncoding.EncodeToString(want[:])
	if !strings.ContainsAny(std, "+/") {
		t.Fatalf("test key %q does not exercise the alphabet difference", std)
	}
	cases := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{"std padded", std, false},
		{"std raw", base64.RawStdEncoding.EncodeToString(want[:]), false},
		{"url padded", base64.URLEncoding.EncodeToString(want[:]), false},
		{"url raw", base64.RawURLEncoding.EncodeToString(want[:]), false},
		{"trailing newline", std + "\n", false},
		{"surrounding spaces", "  " + std + " ", false},
		{"empty", "", true},
		{"31 bytes", base64.StdEncoding.EncodeToString(want[:31]), true},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(want[:], 1)), true},
		{"64 bytes", base64.StdEncoding.EncodeToString(bytes.Repeat(want[:], 2)), true},
		{"not base64", strings.Repeat("!", 43), true},
		{"hex", strings.Repeat("ab", 32), true},
		{"mixed alphabets", "-" + base64.RawStdEncoding.EncodeToString(want[:])[1:42] + "/", true},
		{"non-canonical trailing bits", base64.RawStdEncoding.EncodeToString(want[:])[:42] + "B", true},
		{"double padding", std + "=", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := vault.ParseKey(tc.in)
			if tc.wantErr {
				if !errors.Is(err, vault.ErrBadKey) {
					t.Fatalf("ParseKey error = %v, want ErrBadKey", err)
				}
				if got != ([32]byte{}) {
					t.Fatal("ParseKey returned key material with an error")
				}
				if tc.in != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.in)) {
					t.Fatalf("error %q contains the input", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKey: %v", err)
			}
			if got != want {
				t.Fatalf("ParseKey decoded %x, want %x", got, want)
			}
		})
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add(base64.StdEncoding.EncodeToString(make([]byte, 32)))
	f.Add("")
	f.Add("====")
	f.Fuzz(func(t *testing.T, in string) {
		k, err := vault.ParseKey(in)
		if err != nil {
			if len(in) >= 8 && strings.Contains(err.Error(), in) {
				t.Fatal("error contains the input")
			}
			return
		}
		// Whatever was accepted must be a spelling of the key returned.
		s := strings.TrimSpace(in)
		if s != base64.StdEncoding.EncodeToString(k[:]) &&
			s != base64.RawStdEncoding.EncodeToString(k[:]) &&
			s != base64.URLEncoding.EncodeToString(k[:]) &&
			s != base64.RawURLEncoding.EncodeToString(k[:]) {
			t.Fatalf("accepted %q which is no canonical spelling of the key", in)
		}
	})
}
