package gateway

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestAuthenticate(t *testing.T) {
	a := &authenticator{clients: []ClientKey{
		{Name: "agent-a", SHA256: sha256.Sum256([]byte("key-a"))},
		{Name: "agent-b", SHA256: sha256.Sum256([]byte("key-b"))},
	}}
	cases := []struct {
		name, authorization, apiKey, want string
		ok                                bool
	}{
		{"bearer", "Bearer key-a", "", "agent-a", true},
		{"bearer lower-case scheme", "bearer key-b", "", "agent-b", true},
		{"x-api-key", "", "key-b", "agent-b", true},
		// Two different credentials are ambiguous: neither wins.
		{"bearer and another x-api-key", "Bearer key-a", "key-b", "", false},
		{"bearer and x-api-key, same key", "Bearer key-a", "key-a", "agent-a", true},
		{"wrong bearer with good x-api-key", "Bearer nope", "key-b", "", false},
		{"basic scheme", "Basic key-a", "", "", false},
		{"nothing", "", "", "", false},
		{"wrong", "", "key-c", "", false},
		{"empty bearer", "Bearer", "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := a.authenticate(values(tc.authorization), values(tc.apiKey))
			if (err == nil) != tc.ok || c.Name != tc.want {
				t.Fatalf("got %q %v", c.Name, err)
			}
		})
	}
	anon := &authenticator{anonymous: true}
	if c, err := anon.authenticate(nil, nil); err != nil || c.Name != AnonymousClient || !c.Anonymous || c.workspace() != "default" {
		t.Fatalf("anonymous: %+v %v", c, err)
	}
	if _, err := (&authenticator{}).authenticate([]string{"Bearer x"}, nil); err == nil {
		t.Fatal("no keys and no anonymous mode let a request in")
	}
	// A header given twice is ambiguous even when one copy is valid.
	for _, hdr := range [][2][]string{{{"Bearer key-a", "Bearer key-b"}, nil}, {nil, {"key-a", "key-c"}}, {nil, {"key-a", "key-a"}}} {
		if c, err := a.authenticate(hdr[0], hdr[1]); err == nil {
			t.Fatalf("%q: accepted as %q", hdr, c.Name)
		}
	}
}

// values is one header's values as net/http gives them: none when empty.
func values(v string) []string {
	if v == "" {
		return nil
	}
	return []string{v}
}

func BenchmarkAuthenticate(b *testing.B) {
	for _, n := range []int{1, 16} {
		a := &authenticator{}
		for i := range n {
			a.clients = append(a.clients, ClientKey{Name: fmt.Sprint("agent-", i), SHA256: sha256.Sum256([]byte(fmt.Sprint("key-", i)))})
		}
		b.Run(fmt.Sprint(n, " keys"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.authenticate([]string{"Bearer key-0"}, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestCanonicalUUID(t *testing.T) {
	cases := []struct {
		in   string
		want bool
	}{
		{"0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b", true},
		{"00000000-0000-0000-0000-000000000000", true},
		{"0B9C3A8E-6F7D-4C1E-9A2B-3C4D5E6F7A8B", false},
		{"{0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b}", false},
		{"0b9c3a8e6f7d4c1e9a2b3c4d5e6f7a8b", false},
		{"0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8g", false},
		{"0b9c3a8e-6f7d-4c1e-9a2b_3c4d5e6f7a8b", false},
		{"", false},
	}
	for _, tc := range cases {
		if got := canonicalUUID(tc.in); got != tc.want {
			t.Errorf("canonicalUUID(%q) = %v", tc.in, got)
		}
	}
}

// FuzzCanonicalUUID checks that every accepted id is exactly the canonical
// text of a UUID, so that nothing else can reach a broker URL.
func FuzzCanonicalUUID(f *testing.F) {
	for _, s := range []string{"0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b", "..%2F", "urn:uuid:0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !canonicalUUID(s) {
			return
		}
		u, err := uuid.Parse(s)
		if err != nil || u.String() != s || strings.ContainsAny(s, "/?#%.") {
			t.Fatalf("accepted %q", s)
		}
	})
}
