package faults_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
)

// fileLimit is the RLIMIT_NOFILE (soft and hard) the attacked processes
// run with: low, so that a few hundred connections reach it.
const fileLimit = 256

// limited is argv that runs `dromos sub` with fileLimit open files at
// most; the hard limit is lowered too, so the runtime cannot raise it.
func limited(sub string) []string {
	return []string{"/bin/sh", "-c", `ulimit -n ` + strconv.Itoa(fileLimit) + ` && exec "$0" "$1"`, binary, sub}
}

// h2Preface is what a gRPC client sends first: the HTTP/2 connection
// preface and an empty SETTINGS frame. The attacker sends it and then
// nothing.
var h2Preface = append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 0, 0, 0, 4, 0, 0, 0, 0, 0)

// halfRequest is an HTTP request whose headers never end.
const halfRequest = "POST /v1/request-connection HTTP/1.1\r\nHost: dromos\r\nContent-Type: application/json\r\n"

// attack opens n connections to addr, writes first on each and leaves them
// open without reading. It returns the connections it could open.
func attack(t *testing.T, addr string, n int, first []byte) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for range n {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			break
		}
		_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write(first); err != nil {
			c.Close()
			continue
		}
		conns = append(conns, c)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	return conns
}

// closedByPeer counts the connections the server has closed: reading
// drains what it wrote (SETTINGS, GOAWAY) until end of file or reset; a
// read that times out means the connection is still open.
func closedByPeer(conns []net.Conn) int {
	var mu sync.Mutex
	var wg sync.WaitGroup
	n := 0
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			for {
				_, err := c.Read(buf)
				if err == nil {
					continue
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return
				}
				mu.Lock()
				n++
				mu.Unlock()
				return
			}
		}()
	}
	wg.Wait()
	return n
}

// TestSilentConnectionsCannotStopService: unauthenticated clients open
// connections to every listener (the gateway's gRPC port with the HTTP/2
// preface and then silence, the gateway's and the broker's HTTP ports with
// requests whose headers never end), far more than the processes' file
// limit. An agent's keyed REST call and keyed gRPC call, each of which
// goes through the gateway to the broker, must still be answered.
func TestSilentConnectionsCannotStopService(t *testing.T) {
	t.Parallel()
	s := newSecrets(t)
	p := newFakeProvider(t, providerBehaviour{codeTTL: 3600, refreshTTL: 3600})
	db := "sqlite:" + filepath.Join(t.TempDir(), "dromos.db")
	broker := launchArgs(t, "broker", limited("broker"), 1, "/ready", brokerEnv(db, s))
	register(t, broker, p, "silent")
	gw := launchArgs(t, "gateway", limited("gateway"), 2, "/health", gatewayEnv(broker, s))
	gwHTTP := "127.0.0.1:" + strconv.Itoa(gw.ports[0])
	gwGRPC := "127.0.0.1:" + strconv.Itoa(gw.ports[1])
	brokerHTTP := "127.0.0.1:" + strconv.Itoa(broker.ports[0])

	// Past the file limit on each target, and twice over on the gateway.
	const perTarget = fileLimit + fileLimit/2
	idleGRPC := attack(t, gwGRPC, perTarget, h2Preface)
	halfGateway := attack(t, gwHTTP, perTarget, []byte(halfRequest))
	halfBroker := attack(t, brokerHTTP, perTarget, []byte(halfRequest))
	t.Logf("file limit %d per process; opened %d idle gRPC and %d half-sent REST connections to the gateway, %d half-sent to the broker",
		fileLimit, len(idleGRPC), len(halfGateway), len(halfBroker))
	if len(idleGRPC) < fileLimit || len(halfGateway) < fileLimit || len(halfBroker) < fileLimit {
		t.Fatal("the attack did not get past the file limit")
	}
	// Let the servers take in what they will.
	time.Sleep(time.Second)

	body := map[string]any{"user_id": "u-silent", "provider_name": "silent", "scopes": []string{"read"}, "return_url": returnURL}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	a, err := send(ctx, newClient(10*time.Second), "POST", gw.url+"/v1/request-connection", s.agentKey, body)
	if err != nil || a.status != http.StatusOK || a.str("connection_id") == "" {
		t.Errorf("keyed REST call under attack: %s", describe(a, err))
	} else {
		t.Logf("keyed REST call answered %d in %s", a.status, time.Since(start).Round(time.Millisecond))
	}

	start = time.Now()
	if id, err := grpcRequestConnection(gwGRPC, s.agentKey); err != nil {
		t.Errorf("keyed gRPC call under attack: %v", err)
	} else {
		t.Logf("keyed gRPC call answered (connection %s…) in %s", id[:8], time.Since(start).Round(time.Millisecond))
	}

	for _, pr := range []*proc{broker, gw} {
		if !pr.running() {
			t.Errorf("%s exited", pr.name)
		}
	}
	if t.Failed() {
		return
	}
	t.Logf("closed by the servers: %d of %d idle gRPC, %d of %d half-sent gateway REST, %d of %d half-sent broker",
		closedByPeer(idleGRPC), len(idleGRPC), closedByPeer(halfGateway), len(halfGateway), closedByPeer(halfBroker), len(halfBroker))
	t.Logf("gateway: cap %v, open %v+%v, evicted %v (grpc) %v (http); broker: cap %v, evicted %v",
		metric(t, gw, "net_connections_limit"),
		metric(t, gw, `net_connections_open{listener="gateway-grpc"}`), metric(t, gw, `net_connections_open{listener="gateway-http"}`),
		metric(t, gw, `net_connections_evicted_total{listener="gateway-grpc"}`), metric(t, gw, `net_connections_evicted_total{listener="gateway-http"}`),
		metric(t, broker, "net_connections_limit"), metric(t, broker, `net_connections_evicted_total{listener="broker"}`))
}

// grpcRequestConnection makes a keyed RequestConnection call on a new
// connection and returns the connection id.
func grpcRequestConnection(addr, key string) (string, error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	resp, err := dromosv1.NewGatewayClient(cc).RequestConnection(ctx, &dromosv1.RequestConnectionRequest{
		UserId: "u-silent-grpc", ProviderName: "silent", Scopes: []string{"read"}, ReturnUrl: returnURL,
	}, grpc.WaitForReady(true))
	if err != nil {
		return "", err
	}
	if len(resp.GetConnectionId()) < 8 {
		return "", fmt.Errorf("no connection id in %v", resp)
	}
	return resp.GetConnectionId(), nil
}

// TestSilentConnectionsEnd: far below the connection cap, a connection
// to the gateway's gRPC port that never sends the HTTP/2 preface is closed
// after the handshake timeout (10 s, where gRPC's default is two minutes),
// and one to its HTTP port whose request headers never end after
// ReadHeaderTimeout (10 s).
func TestSilentConnectionsEnd(t *testing.T) {
	t.Parallel()
	s := newSecrets(t)
	nobroker := &proc{url: "http://127.0.0.1:1"} // never called
	gw := launch(t, "gateway", "gateway", 2, "/health", gatewayEnv(nobroker, s))
	for _, tc := range []struct {
		name  string
		port  int
		first string
	}{
		{"gRPC without preface", gw.ports[1], ""},
		{"REST with half-sent headers", gw.ports[0], halfRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(tc.port), 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte(tc.first)); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_ = c.SetReadDeadline(start.Add(30 * time.Second))
			// The server may speak first (gRPC's SETTINGS frame, an HTTP
			// error answer): read until it hangs up.
			buf := make([]byte, 1024)
			for err == nil {
				_, err = c.Read(buf)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("still open after %s", time.Since(start).Round(time.Second))
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Fatalf("closed only after %s", d.Round(time.Second))
			}
			t.Logf("closed by the gateway after %s (%v)", time.Since(start).Round(100*time.Millisecond), err)
		})
	}
}

// TestIdleGRPCConnectionEnds: a client that completes the HTTP/2 preface
// and then neither calls nor answers pings is dropped by the gateway's
// keepalive (a ping after a minute, unanswered for 20 s) or, at the
// latest, after two minutes without a call, however few connections are
// open. The gRPC default kept it forever.
func TestIdleGRPCConnectionEnds(t *testing.T) {
	if testing.Short() {
		t.Skip("waits up to two and a half minutes")
	}
	t.Parallel()
	s := newSecrets(t)
	nobroker := &proc{url: "http://127.0.0.1:1"} // never called
	gw := launch(t, "gateway", "gateway", 2, "/health", gatewayEnv(nobroker, s))
	conns := attack(t, "127.0.0.1:"+strconv.Itoa(gw.ports[1]), 1, h2Preface)
	if len(conns) != 1 {
		t.Fatal("could not connect")
	}
	start := time.Now()
	// Wait without reading: the client answers nothing, not even pings.
	// Then drain what the server wrote and see whether it hung up.
	deadline := start.Add(150 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(5 * time.Second)
		if closedByPeer(conns) == 1 {
			t.Logf("closed by the gateway after %s", time.Since(start).Round(5*time.Second))
			return
		}
	}
	t.Fatalf("an idle gRPC connection was still open after %s", time.Since(start).Round(time.Second))
}
