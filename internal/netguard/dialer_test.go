package netguard_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/netguard"
)

// The Control function is judged directly for public addresses: tests
// never open a connection off this machine.
func TestDialerControl(t *testing.T) {
	cases := []struct {
		name         string
		network      string
		address      string
		allowPrivate bool
		blocked      bool
	}{
		{"loopback", "tcp4", "127.0.0.1:443", false, true},
		{"loopback /8", "tcp4", "127.1.2.3:443", false, true},
		{"IPv6 loopback", "tcp6", "[::1]:443", false, true},
		{"RFC 1918", "tcp4", "10.0.0.1:443", false, true},
		{"RFC 1918 172", "tcp4", "172.16.5.4:443", false, true},
		{"RFC 1918 192", "tcp4", "192.168.1.1:443", false, true},
		{"unique local", "tcp6", "[fd12::1]:443", false, true},
		{"link-local", "tcp4", "169.254.10.10:80", false, true},
		{"IPv6 link-local", "tcp6", "[fe80::1%eth0]:80", false, true},
		{"metadata", "tcp4", "169.254.169.254:80", false, true},
		{"metadata with private allowed", "tcp4", "169.254.169.254:80", true, true},
		{"IPv6 metadata with private allowed", "tcp6", "[fd00:ec2::254]:80", true, true},
		{"IPv4-mapped metadata with private allowed", "tcp6", "[::ffff:169.254.169.254]:80", true, true},
		{"link-local with private allowed", "tcp4", "169.254.10.10:80", true, true},
		{"IPv6 link-local with private allowed", "tcp6", "[fe80::1%eth0]:80", true, true},
		{"Alibaba metadata with private allowed", "tcp4", "100.100.100.200:80", true, true},
		{"unspecified", "tcp4", "0.0.0.0:80", false, true},
		{"IPv6 unspecified", "tcp6", "[::]:80", false, true},
		{"multicast", "udp4", "224.0.0.1:5353", false, true},
		{"CGNAT", "tcp4", "100.64.0.1:443", false, true},
		{"IPv4-mapped loopback", "tcp6", "[::ffff:127.0.0.1]:443", false, true},
		{"IPv4-mapped private", "tcp6", "[::ffff:192.168.0.1]:443", false, true},
		{"NAT64 loopback", "tcp6", "[64:ff9b::7f00:1]:443", false, true},
		{"not an IP destination", "unix", "/run/docker.sock", false, true},
		{"not an IP destination with private allowed", "unix", "/run/docker.sock", true, true},
		{"public IPv4", "tcp4", "8.8.8.8:443", false, false},
		{"public IPv6", "tcp6", "[2606:4700:4700::1111]:443", false, false},
		{"public via NAT64", "tcp6", "[64:ff9b::808:808]:443", false, false},
		{"loopback with private allowed", "tcp4", "127.0.0.1:443", true, false},
		{"RFC 1918 with private allowed", "tcp4", "10.0.0.1:443", true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := netguard.Dialer(nil, tc.allowPrivate)
			err := d.Control(tc.network, tc.address, nil)
			if tc.blocked != errors.Is(err, netguard.ErrBlocked) {
				t.Fatalf("Control(%s, %s) = %v, want blocked=%v", tc.network, tc.address, err, tc.blocked)
			}
			if !tc.blocked && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
		})
	}
}

func TestDialerKeepsBaseSettingsAndControls(t *testing.T) {
	var calls atomic.Int32
	base := &net.Dialer{Timeout: 3 * time.Second, Control: func(string, string, syscall.RawConn) error {
		calls.Add(1)
		return nil
	}}
	d := netguard.Dialer(base, false)
	if d == base || d.Timeout != 3*time.Second {
		t.Fatal("base not copied")
	}
	if err := d.Control("tcp4", "127.0.0.1:80", nil); !errors.Is(err, netguard.ErrBlocked) || calls.Load() != 0 {
		t.Fatalf("blocked dial: err=%v, base Control ran %d times", err, calls.Load())
	}
	if err := d.Control("tcp4", "8.8.8.8:443", nil); err != nil || calls.Load() != 1 {
		t.Fatalf("public dial: err=%v, base Control ran %d times", err, calls.Load())
	}

	// With a ControlContext the standard library skips Control; the
	// guard must be in ControlContext too.
	ctxBase := &net.Dialer{ControlContext: func(context.Context, string, string, syscall.RawConn) error { return nil }}
	d = netguard.Dialer(ctxBase, false)
	if err := d.ControlContext(context.Background(), "tcp4", "10.0.0.1:443", nil); !errors.Is(err, netguard.ErrBlocked) {
		t.Fatalf("ControlContext let a private address through: %v", err)
	}
	if err := d.ControlContext(context.Background(), "tcp4", "8.8.8.8:443", nil); err != nil {
		t.Fatalf("ControlContext refused a public address: %v", err)
	}
}

// loopbackServer counts the requests that reach it.
func loopbackServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestTransportRefusesLoopback(t *testing.T) {
	srv, hits := loopbackServer(t)
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	cases := []struct{ name, url string }{
		{"IPv4 literal", srv.URL + "/token"},
		{"IPv4-mapped IPv6 literal", "http://[::ffff:127.0.0.1]:" + port + "/token"},
	}
	client := &http.Client{Transport: netguard.Transport(false), Timeout: 10 * time.Second}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client.Get(tc.url)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("GET %s succeeded through the guarded transport", tc.url)
			}
			if !errors.Is(err, netguard.ErrBlocked) {
				t.Fatalf("GET %s: %v, want ErrBlocked", tc.url, err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback server was reached %d times", n)
	}

	allowed := &http.Client{Transport: netguard.Transport(true), Timeout: 10 * time.Second}
	resp, err := allowed.Get(srv.URL + "/token")
	if err != nil {
		t.Fatalf("with private destinations allowed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || hits.Load() != 1 {
		t.Fatalf("status %d, hits %d", resp.StatusCode, hits.Load())
	}
}

// A name that passed CheckHost while it pointed at a public address and
// then re-pointed at loopback (DNS rebinding) is refused when dialled.
func TestDNSRebindingRefusedAtDial(t *testing.T) {
	srv, hits := loopbackServer(t)
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	resolver, dns := startDNS(t, map[string][]string{"idp.dromos.test": {"93.184.216.34"}})
	ctx := context.Background()
	if err := netguard.CheckHost(ctx, resolver, "idp.dromos.test"); err != nil {
		t.Fatalf("registration-time check: %v", err)
	}
	dns.set("idp.dromos.test", "127.0.0.1", "::1")

	// Safety net under the guard: this test must never leave the machine,
	// even if the guard or the fake DNS were broken.
	loopbackOnly := func(_, address string, _ syscall.RawConn) error {
		if !strings.HasPrefix(address, "127.") && !strings.HasPrefix(address, "[::1]") {
			t.Errorf("attempted to dial %s", address)
			return errors.New("test: off-machine dial refused")
		}
		return nil
	}
	tr := netguard.Transport(false)
	tr.DialContext = netguard.Dialer(&net.Dialer{Timeout: 5 * time.Second, Resolver: resolver, Control: loopbackOnly}, false).DialContext
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := client.Get("http://idp.dromos.test:" + port + "/.well-known/openid-configuration")
	if err == nil {
		resp.Body.Close()
		t.Fatal("rebound name reached loopback")
	}
	if !errors.Is(err, netguard.ErrBlocked) {
		t.Fatalf("got %v, want ErrBlocked", err)
	}
	if hits.Load() != 0 {
		t.Fatal("the loopback server was reached")
	}
}

func TestDialerRealListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	ctx := context.Background()
	var blocked *netguard.BlockedError
	if _, err := netguard.Dialer(nil, false).DialContext(ctx, "tcp", ln.Addr().String()); !errors.As(err, &blocked) || blocked.Class != "loopback" {
		t.Fatalf("guarded dial: %v", err)
	}
	c, err := netguard.Dialer(nil, true).DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial with private allowed: %v", err)
	}
	c.Close()
}

func TestTransportSettings(t *testing.T) {
	tr := netguard.Transport(false)
	if tr.Proxy != nil {
		t.Error("a proxy would hide the destination from the dial-time check")
	}
	if tr.MaxIdleConnsPerHost != 16 || tr.TLSHandshakeTimeout <= 0 || tr.ResponseHeaderTimeout <= 0 || tr.IdleConnTimeout <= 0 {
		t.Errorf("limits: %+v", tr)
	}
	if tr.TLSClientConfig == nil || tr.TLSClientConfig.MinVersion < tls.VersionTLS12 || tr.TLSClientConfig.InsecureSkipVerify {
		t.Error("TLS settings")
	}
}
