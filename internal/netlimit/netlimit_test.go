package netlimit_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/dromos-dev/dromos/internal/netlimit"
)

// echoServer accepts through lim and echoes every connection, so a client
// write counts as activity once the server has read it.
func echoServer(t *testing.T, lim *netlimit.Limiter, name string) net.Listener {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := lim.Listener(name, raw)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln
}

func dial(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ping writes a byte and waits for its echo: the server has read it.
func ping(t *testing.T, c net.Conn) {
	t.Helper()
	if _, err := c.Write([]byte{'x'}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		t.Fatalf("echo: %v", err)
	}
}

// closedByServer reports whether the server closed c (EOF or reset).
func closedByServer(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	var b [1]byte
	_, err := c.Read(b[:])
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil
}

func waitOpen(t *testing.T, lim *netlimit.Limiter, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for lim.Open() != want {
		if time.Now().After(deadline) {
			t.Fatalf("open connections = %d, want %d", lim.Open(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFullCapClosesLeastRecentlyActive(t *testing.T) {
	reg := prometheus.NewRegistry()
	lim, err := netlimit.New(netlimit.Options{Max: 3, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ln := echoServer(t, lim, "test")
	a, b, c := dial(t, ln), dial(t, ln), dial(t, ln)
	ping(t, a)
	ping(t, b)
	ping(t, c)
	waitOpen(t, lim, 3)
	// b stays silent from now on; a and c keep talking.
	ping(t, a)
	ping(t, c)

	d := dial(t, ln)
	ping(t, d) // accepted although the cap was reached
	if !closedByServer(t, b) {
		t.Fatal("the silent connection is still open")
	}
	for _, conn := range []net.Conn{a, c, d} {
		ping(t, conn) // still served
	}
	waitOpen(t, lim, 3)
	if got := gauge(t, reg, "net_connections_evicted_total"); got != 1 {
		t.Fatalf("net_connections_evicted_total = %v, want 1", got)
	}
	if got := gauge(t, reg, "net_connections_open"); got != 3 {
		t.Fatalf("net_connections_open = %v, want 3", got)
	}
	if got := gauge(t, reg, "net_connections_limit"); got != 3 {
		t.Fatalf("net_connections_limit = %v, want 3", got)
	}
}

// gauge is the value of the one series of family name.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += value(m)
		}
		return sum
	}
	t.Fatalf("no series %s", name)
	return 0
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

func TestBelowCapNothingIsClosed(t *testing.T) {
	lim, err := netlimit.New(netlimit.Options{Max: 4})
	if err != nil {
		t.Fatal(err)
	}
	ln := echoServer(t, lim, "test")
	var conns []net.Conn
	for range 4 {
		c := dial(t, ln)
		ping(t, c)
		conns = append(conns, c)
	}
	waitOpen(t, lim, 4)
	conns[0].Close() // a client leaving frees its place
	waitOpen(t, lim, 3)
	e := dial(t, ln)
	ping(t, e)
	for _, c := range conns[1:] {
		ping(t, c)
	}
	waitOpen(t, lim, 4)
}

func TestListenersShareOneCap(t *testing.T) {
	lim, err := netlimit.New(netlimit.Options{Max: 2})
	if err != nil {
		t.Fatal(err)
	}
	rest, grpc := echoServer(t, lim, "rest"), echoServer(t, lim, "grpc")
	idle1, idle2 := dial(t, grpc), dial(t, grpc)
	ping(t, idle1)
	ping(t, idle2)
	// Silent connections on one listener do not keep another from serving.
	for range 3 {
		c := dial(t, rest)
		ping(t, c)
	}
	if !closedByServer(t, idle1) || !closedByServer(t, idle2) {
		t.Fatal("silent connections on the other listener were kept")
	}
	if lim.Open() > 2 {
		t.Fatalf("open = %d above the cap", lim.Open())
	}
}

func TestConcurrentChurnStaysUnderCap(t *testing.T) {
	const max = 8
	lim, err := netlimit.New(netlimit.Options{Max: max})
	if err != nil {
		t.Fatal(err)
	}
	ln := echoServer(t, lim, "test")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var over sync.Once
	var overErr error
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				if n := lim.Open(); n > max {
					over.Do(func() { overErr = errors.New("cap exceeded") })
				}
				time.Sleep(time.Millisecond)
			}
		}
	}()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					continue
				}
				_, _ = c.Write([]byte{'x'})
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				var b [1]byte
				_, _ = c.Read(b[:])
				c.Close()
			}
		}()
	}
	wg.Wait()
	close(stop)
	if overErr != nil {
		t.Fatal(overErr)
	}
	waitOpen(t, lim, 0)
}

func TestDefaultMaxAndResolve(t *testing.T) {
	for _, tc := range []struct {
		name      string
		override  int
		fileLimit uint64
		want      int
		err       string
	}{
		{name: "docker default 1024", fileLimit: 1024, want: 768},
		{name: "small limit keeps 64 free", fileLimit: 256, want: 192},
		{name: "tiny limit split in half", fileLimit: 40, want: 20},
		{name: "high limit capped by memory ceiling", fileLimit: 1 << 20, want: netlimit.Ceiling},
		{name: "unlimited", fileLimit: ^uint64(0), want: netlimit.Ceiling},
		{name: "unknown limit", fileLimit: 0, want: netlimit.Ceiling},
		{name: "override below the limit", override: 500, fileLimit: 1024, want: 500},
		{name: "override at the limit refused", override: 1024, fileLimit: 1024, err: "not below the open-file limit (1024)"},
		{name: "override above the limit refused", override: 5000, fileLimit: 1024, err: "MAX_CONNECTIONS=5000"},
		{name: "override with unknown limit", override: 5000, fileLimit: 0, want: 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := netlimit.Resolve(tc.override, tc.fileLimit)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Resolve = %d, %v; want %d", got, err, tc.want)
			}
			if tc.fileLimit != 0 && uint64(got) >= tc.fileLimit {
				t.Fatalf("cap %d not below the file limit %d", got, tc.fileLimit)
			}
		})
	}
}

func TestNewRefusesZero(t *testing.T) {
	if _, err := netlimit.New(netlimit.Options{}); err == nil {
		t.Fatal("Max 0 accepted")
	}
}
