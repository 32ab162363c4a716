package pkce_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/dromos-dev/dromos/internal/pkce"
)

// RFC 7636 Appendix B.
const (
	rfcVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

// The octets of Appendix B, from which rfcVerifier is their base64url form.
var rfcOctets = []byte{
	116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173,
	187, 186, 22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83,
	132, 141, 121,
}

func TestChallengeS256RFCExample(t *testing.T) {
	if got := pkce.ChallengeS256(rfcVerifier); got != rfcChallenge {
		t.Fatalf("ChallengeS256(rfc verifier) = %q, want %q", got, rfcChallenge)
	}
}

func TestNewVerifierRFCExample(t *testing.T) {
	v, err := pkce.NewVerifier(bytes.NewReader(rfcOctets))
	if err != nil {
		t.Fatal(err)
	}
	if v != rfcVerifier {
		t.Fatalf("NewVerifier(rfc octets) = %q, want %q", v, rfcVerifier)
	}
}

func TestNewVerifierFresh(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		v, err := pkce.NewVerifier(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(v) != 43 || !pkce.ValidVerifier(v) {
			t.Fatalf("verifier %q is not a valid 43-char verifier", v)
		}
		if seen[v] {
			t.Fatalf("verifier repeated: %q", v)
		}
		seen[v] = true
	}
}

func TestNewVerifierRandomFailure(t *testing.T) {
	cases := []struct {
		name string
		r    *bytes.Reader
	}{
		{"empty", bytes.NewReader(nil)},
		{"short", bytes.NewReader(make([]byte, 31))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := pkce.NewVerifier(tc.r)
			if !errors.Is(err, pkce.ErrRandom) || v != "" {
				t.Fatalf("NewVerifier = %q, %v; want \"\", ErrRandom", v, err)
			}
		})
	}
	boom := errors.New("entropy pool on fire")
	if _, err := pkce.NewVerifier(iotest.ErrReader(boom)); !errors.Is(err, pkce.ErrRandom) || !errors.Is(err, boom) {
		t.Fatalf("NewVerifier(failing reader) error = %v; want ErrRandom wrapping the cause", err)
	}
}

func TestValidVerifier(t *testing.T) {
	cases := []struct {
		name string
		v    string
		want bool
	}{
		{"rfc example", rfcVerifier, true},
		{"min length 43", strings.Repeat("a", 43), true},
		{"max length 128", strings.Repeat("Z", 128), true},
		{"all unreserved marks", strings.Repeat("-._~", 11), true},
		{"empty", "", false},
		{"42 chars", strings.Repeat("a", 42), false},
		{"129 chars", strings.Repeat("a", 129), false},
		{"plus", strings.Repeat("a", 42) + "+", false},
		{"slash", strings.Repeat("a", 42) + "/", false},
		{"padding", strings.Repeat("a", 42) + "=", false},
		{"space", strings.Repeat("a", 42) + " ", false},
		{"percent", strings.Repeat("a", 42) + "%", false},
		{"non-ascii", strings.Repeat("a", 41) + "é", false},
		{"nul", strings.Repeat("a", 42) + "\x00", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := pkce.ValidVerifier(tc.v); got != tc.want {
				t.Errorf("ValidVerifier(%q) = %v, want %v", tc.v, got, tc.want)
			}
		})
	}
}

func FuzzValidVerifier(f *testing.F) {
	f.Add(rfcVerifier)
	f.Add("")
	f.Add(strings.Repeat("~", 128))
	f.Fuzz(func(t *testing.T, v string) {
		want := len(v) >= 43 && len(v) <= 128 &&
			strings.Trim(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") == ""
		if got := pkce.ValidVerifier(v); got != want {
			t.Fatalf("ValidVerifier(%q) = %v, want %v", v, got, want)
		}
		if len(pkce.ChallengeS256(v)) != 43 {
			t.Fatal("challenge is not 43 characters")
		}
	})
}

func ExampleChallengeS256() {
	fmt.Println(pkce.ChallengeS256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"))
	// Output: E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM
}
