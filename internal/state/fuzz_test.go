package state_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/state"
)

func FuzzVerify(f *testing.F) {
	c := &clock{t0}
	s := newSigner(f, c, key(1, 0xA1))
	seeds := []state.Payload{
		payload,
		{},
		{ConnectionID: strings.Repeat("c", 255)},
		{Nonce: "\x00\xff", IssuedAt: t0.Add(-time.Minute), ExpiresAt: t0.Add(time.Second)},
	}
	for _, p := range seeds {
		f.Add(sign(f, s, p))
	}
	for _, junk := range []string{"", "A", "AAAA", "AQ", strings.Repeat("_", 100), "eyJhbGciOiJub25lIn0", "tok\n"} {
		f.Add(junk)
	}
	f.Fuzz(func(t *testing.T, token string) {
		p, err := s.Verify(token)
		if err != nil {
			if p != (state.Payload{}) {
				t.Fatal("payload returned with an error")
			}
			return
		}
		// An accepted token must be the one encoding of its payload;
		// otherwise two strings would name the same state and replay
		// protection keyed on the token would be bypassed.
		again, err := s.Sign(p)
		if err != nil {
			t.Fatalf("cannot re-sign an accepted payload: %v", err)
		}
		if again != token {
			t.Fatalf("accepted %q but its payload signs as %q", token, again)
		}
	})
}

func BenchmarkSign(b *testing.B) {
	c := &clock{t0}
	s := newSigner(b, c, key(1, 0xA1))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	c := &clock{t0}
	s := newSigner(b, c, key(1, 0xA1))
	tok := sign(b, s, payload)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
