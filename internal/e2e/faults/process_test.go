package faults_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds a process's start; a PostgreSQL broker migrates
// first, and the machine may be busy with the rest of the suite.
const startTimeout = 60 * time.Second

// logBuffer collects a process's stderr (its log) for failure reports and
// leak checks.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// proc is a running dromos process.
type proc struct {
	name   string
	url    string // http://127.0.0.1:PORT
	ports  []int  // every port it listens on, url's first
	cmd    *exec.Cmd
	log    *logBuffer
	exited chan struct{}
}

// running reports whether the process has not exited.
func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL: no graceful shutdown, no deferred clean-up, exactly
// what a crashed or OOM-killed replica does.
func (p *proc) kill() {
	if p.running() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.exited
}

// freePort asks the kernel for a free loopback port; it stays free only
// until someone else takes it, so starts retry on a collision.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// launch starts the dromos subcommand on nports fresh ports (env builds
// its environment from them) and waits until GET readyPath on the first
// port answers 200. A port taken between freePort and the start is retried
// with new ports.
func launch(t *testing.T, name, sub string, nports int, readyPath string, env func(ports []int) []string) *proc {
	t.Helper()
	return launchArgs(t, name, []string{binary, sub}, nports, readyPath, env)
}

// launchArgs is launch for any command line (argv[0] is the program).
func launchArgs(t *testing.T, name string, argv []string, nports int, readyPath string, env func(ports []int) []string) *proc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ports := make([]int, nports)
		for i := range ports {
			ports[i] = freePort(t)
		}
		p := &proc{name: name, url: "http://127.0.0.1:" + strconv.Itoa(ports[0]), ports: ports, log: &logBuffer{}, exited: make(chan struct{})}
		p.cmd = exec.Command(argv[0], argv[1:]...)
		p.cmd.Env = env(ports)
		p.cmd.Stdout = p.log
		p.cmd.Stderr = p.log
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", name, err)
		}
		go func() { _ = p.cmd.Wait(); close(p.exited) }()
		err := waitReady(p, readyPath)
		if err == nil {
			t.Cleanup(func() {
				p.kill()
				if t.Failed() {
					t.Logf("%s log, errors:\n%s\n%s log, end:\n%s", p.name, errorLines(p.log.String(), 10), p.name, tail(p.log.String(), 2000))
				}
			})
			return p
		}
		p.kill()
		if attempt < 3 && strings.Contains(p.log.String(), "address already in use") {
			continue
		}
		t.Fatalf("%s did not start: %v\n%s", name, err, tail(p.log.String(), 4000))
	}
}

func waitReady(p *proc, path string) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if !p.running() {
			return fmt.Errorf("exited: %v", p.cmd.ProcessState)
		}
		resp, err := hc.Get(p.url + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("GET %s not ready within %s", path, startTimeout)
}

// errorLines picks the first n ERROR records of a JSON log: on a failure
// they usually say why, while the tail is full of expected warnings.
func errorLines(log string, n int) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `"level":"ERROR"`) && len(out) < n {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// startBroker runs `dromos broker` on dbURL.
func startBroker(t *testing.T, name, dbURL string, s secrets) *proc {
	t.Helper()
	return launch(t, name, "broker", 1, "/ready", brokerEnv(dbURL, s))
}

// brokerEnv is the environment of a broker on dbURL.
func brokerEnv(dbURL string, s secrets) func(ports []int) []string {
	return func(ports []int) []string {
		port := strconv.Itoa(ports[0])
		return []string{
			"DATABASE_URL=" + dbURL,
			"BASE_URL=http://127.0.0.1:" + port,
			"PORT=" + port,
			"LISTEN_HOST=127.0.0.1",
			"ENCRYPTION_KEY=" + s.encryptionKey,
			"STATE_KEY=" + s.stateKey,
			"RATE_LIMIT_CALLBACK=0",
			"LOG_LEVEL=warn",
		}
	}
}

// startBrokers runs n brokers on one database. The first migrates the
// schema before the others start.
func startBrokers(t *testing.T, n int, dbURL string, s secrets) []*proc {
	t.Helper()
	out := []*proc{startBroker(t, "broker-1", dbURL, s)}
	for i := 2; i <= n; i++ {
		out = append(out, startBroker(t, fmt.Sprintf("broker-%d", i), dbURL, s))
	}
	return out
}

// startGateway runs `dromos gateway` in front of broker, accepting the
// agent key.
func startGateway(t *testing.T, name string, broker *proc, s secrets) *proc {
	t.Helper()
	return launch(t, name, "gateway", 2, "/health", gatewayEnv(broker, s))
}

// gatewayEnv is the environment of a gateway (HTTP port, then gRPC port)
// in front of broker, accepting the agent key.
func gatewayEnv(broker *proc, s secrets) func(ports []int) []string {
	return func(ports []int) []string {
		return []string{
			"PORT=" + strconv.Itoa(ports[0]),
			"PORT_GRPC=" + strconv.Itoa(ports[1]),
			"LISTEN_HOST=127.0.0.1",
			"BROKER_BASE_URL=" + broker.url,
			"STATE_PUBLIC_KEYS=" + s.statePublicKeys,
			"GATEWAY_API_KEYS=" + agentName + ":" + s.agentKey,
			"LOG_LEVEL=warn",
		}
	}
}

// assertNoLeak fails t when any process logged one of the secrets the
// provider issued.
func assertNoLeak(t *testing.T, secrets []string, procs ...*proc) {
	t.Helper()
	for _, p := range procs {
		log := p.log.String()
		for _, s := range secrets {
			if s != "" && strings.Contains(log, s) {
				t.Errorf("%s logged a token", p.name)
			}
		}
	}
}

// eventually polls cond until it holds or d passes.
func eventually(ctx context.Context, d time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
