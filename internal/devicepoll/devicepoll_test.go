package devicepoll_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/devicepoll"
	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/vault"
)

// noStore satisfies storage.Storage; NewGrant never touches the store
// (the broker's tests run the poller on both real backends).
type noStore struct{ storage.Storage }

func newPoller(t *testing.T) (*devicepoll.Poller, *vault.Keyring) {
	t.Helper()
	ring, err := vault.NewKeyring(vault.Key{ID: 1, Secret: [32]byte{4, 5, 6}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := devicepoll.New(devicepoll.Options{}, devicepoll.Deps{Store: noStore{}, Vault: ring}); err == nil {
		t.Fatal("New accepted missing dependencies")
	}
	p, err := devicepoll.New(devicepoll.Options{}, devicepoll.Deps{Store: noStore{}, Vault: ring, Client: exchange.New(exchange.Options{}),
		Resolve: func(context.Context, string) (exchange.Endpoint, error) { return exchange.Endpoint{}, nil },
		Granted: func(context.Context, storage.Connection, exchange.Endpoint, *exchange.Token) {},
		Failed:  func(context.Context, storage.Connection, string) {}})
	if err != nil {
		t.Fatal(err)
	}
	return p, ring
}

// TestNewGrant: the device code is sealed (never stored as given) and
// bound to its connection; the first poll waits one interval, rounded up
// to whole seconds; the grant expires with the code.
func TestNewGrant(t *testing.T) {
	p, ring := newPoller(t)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	cases := []struct {
		interval time.Duration
		want     int
	}{{5 * time.Second, 5}, {1500 * time.Millisecond, 2}, {0, 1}}
	for _, tc := range cases {
		g, err := p.NewGrant("conn-1", "prov-1", exchange.DeviceAuthorization{DeviceCode: "the-device-code-0123456789",
			UserCode: "ABCD", VerificationURI: "https://e.com/d", ExpiresIn: 10 * time.Minute, Interval: tc.interval}, now)
		if err != nil {
			t.Fatal(err)
		}
		if g.IntervalSeconds != tc.want || !g.NextPollAt.Equal(now.Add(time.Duration(tc.want)*time.Second)) ||
			!g.ExpiresAt.Equal(now.Add(10*time.Minute)) || g.ConnectionID != "conn-1" || g.ProviderID != "prov-1" {
			t.Fatalf("interval %v: grant %+v", tc.interval, g)
		}
		if bytes.Contains(g.DeviceCode, []byte("the-device-code")) {
			t.Fatal("the device code is stored in plain text")
		}
		if plain, err := ring.Open(g.DeviceCode, []byte("device_code:conn-1")); err != nil || string(plain) != "the-device-code-0123456789" {
			t.Fatalf("open: %q %v", plain, err)
		}
		// Sealed for one connection, it does not open for another: a row
		// copied under another id is useless.
		if _, err := ring.Open(g.DeviceCode, []byte("device_code:conn-2")); err == nil {
			t.Fatal("the sealed device code opened for another connection")
		}
	}
}
