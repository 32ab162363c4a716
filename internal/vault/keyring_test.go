package vault_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/dromos-dev/dromos/internal/vault"
)

func testKey(t testing.TB, id byte) vault.Key {
	t.Helper()
	k := vault.Key{ID: id}
	if _, err := rand.Read(k.Secret[:]); err != nil {
		t.Fatal(err)
	}
	return k
}

func newRing(t testing.TB, primary vault.Key, older ...vault.Key) *vault.Keyring {
	t.Helper()
	r, err := vault.NewKeyring(primary, older...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var (
	plaintext = []byte(`{"access_token":"ya29.a0Af","refresh_token":"1//0g"}`)
	aadA      = []byte("token:conn-A")
	aadB      = []byte("token:conn-B")
)

func TestRoundTrip(t *testing.T) {
	ring := newRing(t, testKey(t, 7))
	cases := []struct {
		name      string
		plaintext []byte
		aad       []byte
	}{
		{"token set", plaintext, aadA},
		{"empty plaintext", []byte{}, aadA},
		{"nil aad", plaintext, nil},
		{"large", bytes.Repeat([]byte("x"), 1<<16), aadA},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ct, err := ring.Seal(tc.plaintext, tc.aad)
			if err != nil {
				t.Fatal(err)
			}
			if len(ct) != len(tc.plaintext)+vault.Overhead {
				t.Errorf("sealed length %d, want %d", len(ct), len(tc.plaintext)+vault.Overhead)
			}
			if ct[0] != 1 || ct[1] != 7 {
				t.Errorf("header = %x, want version 1 and key id 7", ct[:2])
			}
			if len(tc.plaintext) > 8 && bytes.Contains(ct, tc.plaintext[:8]) {
				t.Error("ciphertext contains plaintext")
			}
			got, err := ring.Open(ct, tc.aad)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tc.plaintext) {
				t.Fatal("Open returned different plaintext")
			}
		})
	}
}

// A value copied from row A into row B must not open there.
func TestAADBinding(t *testing.T) {
	ring := newRing(t, testKey(t, 1))
	ct, err := ring.Seal(plaintext, aadA)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		aad  []byte
	}{
		{"other row", aadB},
		{"nil", nil},
		{"prefix", aadA[:len(aadA)-1]},
		{"extended", append(append([]byte{}, aadA...), 0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ring.Open(ct, tc.aad)
			if !errors.Is(err, vault.ErrDecrypt) || got != nil {
				t.Fatalf("Open with %q = %q, %v; want nil, ErrDecrypt", tc.aad, got, err)
			}
		})
	}
	if _, err := ring.Open(ct, aadA); err != nil {
		t.Fatalf("the right aad no longer opens the value: %v", err)
	}
}

func TestEveryBitFlipFails(t *testing.T) {
	ring := newRing(t, testKey(t, 1))
	ct, err := ring.Seal(plaintext, aadA)
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(ct) * 8 {
		bad := bytes.Clone(ct)
		bad[i/8] ^= 1 << (i % 8)
		got, err := ring.Open(bad, aadA)
		if got != nil || err == nil {
			t.Fatalf("flip of bit %d accepted", i)
		}
		// A flip in the key id byte names a key this ring lacks.
		if i/8 == 1 {
			if !errors.Is(err, vault.ErrUnknownKey) {
				t.Fatalf("flip of key id bit %d: %v, want ErrUnknownKey", i, err)
			}
		} else if !errors.Is(err, vault.ErrDecrypt) {
			t.Fatalf("flip of bit %d: %v, want ErrDecrypt", i, err)
		}
	}
}

// Relabelling a value to another key the ring holds must fail too: the key id
// is authenticated, not just used for lookup.
func TestKeyIDIsAuthenticated(t *testing.T) {
	k1, k2 := testKey(t, 1), testKey(t, 2)
	k2.Secret = k1.Secret // same material, so only the header binding can catch it
	ring := newRing(t, k1, k2)
	ct, err := ring.Seal(plaintext, aadA)
	if err != nil {
		t.Fatal(err)
	}
	ct[1] = 2
	if _, err := ring.Open(ct, aadA); !errors.Is(err, vault.ErrDecrypt) {
		t.Fatalf("relabelled value: %v, want ErrDecrypt", err)
	}
}

func TestTruncation(t *testing.T) {
	ring := newRing(t, testKey(t, 1))
	ct, err := ring.Seal(plaintext, aadA)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(ct) {
		if got, err := ring.Open(ct[:n], aadA); !errors.Is(err, vault.ErrDecrypt) || got != nil {
			t.Fatalf("value truncated to %d bytes: %v, want ErrDecrypt", n, err)
		}
	}
	if _, err := ring.Open(append(bytes.Clone(ct), 0), aadA); !errors.Is(err, vault.ErrDecrypt) {
		t.Fatalf("value with a trailing byte: %v, want ErrDecrypt", err)
	}
}

func TestWrongKey(t *testing.T) {
	sealer := newRing(t, testKey(t, 1))
	opener := newRing(t, testKey(t, 1)) // same id, different material
	ct, err := sealer.Seal(plaintext, aadA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := opener.Open(ct, aadA); !errors.Is(err, vault.ErrDecrypt) {
		t.Fatalf("Open with another key: %v, want ErrDecrypt", err)
	}
}

func TestUnknownKeyID(t *testing.T) {
	sealer := newRing(t, testKey(t, 9))
	opener := newRing(t, testKey(t, 1), testKey(t, 2))
	ct, err := sealer.Seal(plaintext, aadA)
	if err != nil {
		t.Fatal(err)
	}
	got, err := opener.Open(ct, aadA)
	if !errors.Is(err, vault.ErrUnknownKey) || got != nil {
		t.Fatalf("Open = %v, want ErrUnknownKey", err)
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := testKey(t, 1), testKey(t, 2)
	before := newRing(t, oldKey)
	ct, err := before.Seal(plaintext, aadA)
	if err != nil {
		t.Fatal(err)
	}

	after := newRing(t, newKey, oldKey)
	if after.PrimaryID() != 2 {
		t.Fatalf("PrimaryID = %d, want 2", after.PrimaryID())
	}
	got, err := after.Open(ct, aadA)
	if err != nil || !bytes.Equal(got, plaintext) {
		t.Fatalf("rotated ring cannot open old value: %v", err)
	}
	if id, _ := vault.KeyID(ct); id != 1 {
		t.Fatalf("KeyID(old value) = %d, want 1", id)
	}

	resealed, err := after.Seal(got, aadA)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := vault.KeyID(resealed); id != 2 {
		t.Fatalf("KeyID(resealed) = %d, want 2", id)
	}
	// Once the old key is retired, old values fail loudly and new ones open.
	retired := newRing(t, newKey)
	if _, err := retired.Open(ct, aadA); !errors.Is(err, vault.ErrUnknownKey) {
		t.Fatalf("retired ring on old value: %v, want ErrUnknownKey", err)
	}
	if _, err := retired.Open(resealed, aadA); err != nil {
		t.Fatalf("retired ring on resealed value: %v", err)
	}
}

func TestNoncesDiffer(t *testing.T) {
	ring := newRing(t, testKey(t, 1))
	seen := map[string]bool{}
	for range 100 {
		ct, err := ring.Seal(plaintext, aadA)
		if err != nil {
			t.Fatal(err)
		}
		nonce := string(ct[2:14])
		if seen[nonce] {
			t.Fatalf("nonce %x repeated", nonce)
		}
		seen[nonce] = true
	}
}

func TestWithRand(t *testing.T) {
	ring := newRing(t, testKey(t, 1))
	fixed := ring.WithRand(bytes.NewReader(bytes.Repeat([]byte{0xAB}, 12)))
	ct, err := fixed.Seal(plaintext, aadA)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ct[2:14], bytes.Repeat([]byte{0xAB}, 12)) {
		t.Fatalf("nonce %x did not come from the injected reader", ct[2:14])
	}
	if _, err := ring.Open(ct, aadA); err != nil {
		t.Fatalf("original ring cannot open value sealed by its WithRand copy: %v", err)
	}

	boom := errors.New("no entropy")
	cases := []struct {
		name string
		ring *vault.Keyring
	}{
		{"exhausted", fixed},
		{"short", ring.WithRand(bytes.NewReader(make([]byte, 11)))},
		{"failing", ring.WithRand(iotest.ErrReader(boom))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ct, err := tc.ring.Seal(plaintext, aadA)
			if !errors.Is(err, vault.ErrRandom) || ct != nil {
				t.Fatalf("Seal = %x, %v; want nil, ErrRandom", ct, err)
			}
		})
	}
}

func TestNewKeyringDuplicateIDs(t *testing.T) {
	cases := []struct {
		name    string
		primary vault.Key
		older   []vault.Key
		wantErr bool
	}{
		{"primary only", testKey(t, 1), nil, false},
		{"distinct", testKey(t, 1), []vault.Key{testKey(t, 2), testKey(t, 3)}, false},
		{"older repeats primary", testKey(t, 1), []vault.Key{testKey(t, 1)}, true},
		{"older repeat each other", testKey(t, 1), []vault.Key{testKey(t, 2), testKey(t, 2)}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ring, err := vault.NewKeyring(tc.primary, tc.older...)
			if tc.wantErr {
				if !errors.Is(err, vault.ErrDuplicateKeyID) || ring != nil {
					t.Fatalf("NewKeyring = %v, want ErrDuplicateKeyID", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ring.PrimaryID() != tc.primary.ID {
				t.Fatalf("PrimaryID = %d, want %d", ring.PrimaryID(), tc.primary.ID)
			}
		})
	}
}

func TestKeyID(t *testing.T) {
	ring := newRing(t, testKey(t, 42))
	ct, err := ring.Seal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		in      []byte
		want    byte
		wantErr bool
	}{
		{"sealed", ct, 42, false},
		{"nil", nil, 0, true},
		{"header only", ct[:2], 0, true},
		{"one short", ct[:len(ct)-1], 0, true},
		{"bad version", append([]byte{2}, ct[1:]...), 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := vault.KeyID(tc.in)
			if tc.wantErr != (err != nil) || got != tc.want {
				t.Fatalf("KeyID = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	ring := newRing(t, testKey(t, 1))
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			aad := fmt.Appendf(nil, "row-%d", g)
			for range 50 {
				ct, err := ring.Seal(plaintext, aad)
				if err == nil {
					_, err = ring.Open(ct, aad)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func FuzzOpen(f *testing.F) {
	k1, k2 := vault.Key{ID: 1}, vault.Key{ID: 2}
	k1.Secret[0], k2.Secret[0] = 1, 2
	ring, err := vault.NewKeyring(k1, k2)
	if err != nil {
		f.Fatal(err)
	}
	ct, err := ring.Seal(plaintext, aadA)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ct, aadA)
	f.Add(ct[:vault.Overhead], aadA)
	f.Add([]byte{}, []byte{})
	f.Add([]byte{1, 1}, aadA)
	f.Add(bytes.Repeat([]byte{1}, 64), []byte{})
	f.Fuzz(func(t *testing.T, ct, aad []byte) {
		pt, err := ring.Open(ct, aad)
		if err != nil {
			if pt != nil {
				t.Fatal("plaintext returned with an error")
			}
			if !errors.Is(err, vault.ErrDecrypt) && !errors.Is(err, vault.ErrUnknownKey) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// Anything accepted must have been sealed by one of the ring's keys.
		if len(ct) != len(pt)+vault.Overhead || (ct[1] != 1 && ct[1] != 2) {
			t.Fatalf("accepted a value of impossible shape: %x", ct)
		}
	})
}

// A realistic token set: access, refresh and id tokens of typical sizes.
var tokenSet = []byte(`{"access_token":"` + strings.Repeat("a", 300) +
	`","refresh_token":"` + strings.Repeat("r", 100) +
	`","id_token":"` + strings.Repeat("i", 560) +
	`","token_type":"Bearer","expiry":"2026-01-01T00:00:00Z"}`)

func BenchmarkSeal(b *testing.B) {
	ring := newRing(b, testKey(b, 1))
	b.SetBytes(int64(len(tokenSet)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ring.Seal(tokenSet, aadA); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	ring := newRing(b, testKey(b, 1))
	ct, err := ring.Seal(tokenSet, aadA)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(tokenSet)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ring.Open(ct, aadA); err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleKeyring() {
	var key vault.Key
	key.ID = 1
	copy(key.Secret[:], "an example key of 32 bytes, only")
	ring, err := vault.NewKeyring(key)
	if err != nil {
		panic(err)
	}
	aad := []byte("token:conn-123")
	sealed, _ := ring.Seal([]byte("refresh-token"), aad)
	opened, _ := ring.Open(sealed, aad)
	_, err = ring.Open(sealed, []byte("token:conn-456"))
	fmt.Println(string(opened), err)
	// Output: refresh-token vault: cannot decrypt value
}
