package browser_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/config"
	"github.com/dromos-dev/dromos/internal/testenv"
	"github.com/dromos-dev/dromos/sdk"
)

// output keeps a process's stdout and stderr as lines and wakes whoever
// waits for a line to appear.
type output struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	grew    chan struct{} // closed and replaced when a line arrives
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.partial = append(o.partial, p...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			break
		}
		o.lines = append(o.lines, string(o.partial[:i]))
		o.partial = o.partial[i+1:]
	}
	close(o.grew)
	o.grew = make(chan struct{})
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.lines, "\n") + "\n" + string(o.partial)
}

// process is a running dromos subcommand.
type process struct {
	name   string
	cmd    *exec.Cmd
	out    *output
	exited chan struct{}
}

// startProcess runs dromos with args and exactly env (nothing is
// inherited, so a developer's DATABASE_URL cannot leak in). The test's
// cleanup stops it.
func startProcess(t *testing.T, name string, env []string, args ...string) *process {
	t.Helper()
	p := &process{name: name, out: &output{grew: make(chan struct{})}, exited: make(chan struct{})}
	p.cmd = exec.Command(dromosBinary, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(p.stop)
	return p
}

// waitFor returns the submatches of the first output line matching re,
// waiting for it until ctx ends or the process exits.
func (p *process) waitFor(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	seen := 0
	for {
		p.out.mu.Lock()
		for ; seen < len(p.out.lines); seen++ {
			if m := re.FindStringSubmatch(p.out.lines[seen]); m != nil {
				p.out.mu.Unlock()
				return m, nil
			}
		}
		grew := p.out.grew
		p.out.mu.Unlock()
		select {
		case <-grew:
		case <-p.exited:
			return nil, fmt.Errorf("%s exited before printing %q", p.name, re)
		case <-ctx.Done():
			return nil, fmt.Errorf("%s did not print %q: %w", p.name, re, ctx.Err())
		}
	}
}

// stop ends the process gracefully (SIGTERM), killing it if it lingers.
func (p *process) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func randomKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// freePort finds a loopback port nobody listens on. The broker needs its
// port before it starts (BASE_URL, and the OP's redirect URI, name it).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// listeningRE matches the line a server logs once its socket is bound.
func listeningRE(server string) *regexp.Regexp {
	return regexp.MustCompile(`"msg":"listening","server":"` + regexp.QuoteMeta(server) + `","addr":"([^"]+)"`)
}

// opStack is the production shape on loopback: a broker and a gateway
// process, the independent OP, and the agent's return page.
type opStack struct {
	brokerURL  string
	gatewayURL string
	brokerKey  string
	agentKey   string
	broker     *process
	gateway    *process
	op         *testenv.OP
	ret        *returnPage
	agent      *sdk.Client
}

// startOPStack starts the broker, the OP and a gateway; gatewayEnv adds
// to (or, naming a variable again, replaces) the gateway's environment.
func startOPStack(t *testing.T, gatewayEnv ...func(*opStack) []string) *opStack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := &opStack{brokerKey: randomHex(t, 24), agentKey: randomHex(t, 24)}
	dir := t.TempDir()
	stateKey := randomKey(t)

	// The port is chosen before the broker binds it; if another process
	// takes it in between, the broker exits and we try another.
	for attempt := 1; ; attempt++ {
		port := strconv.Itoa(freePort(t))
		s.brokerURL = "http://127.0.0.1:" + port
		s.broker = startProcess(t, "broker", []string{
			"PORT=" + port, "LISTEN_HOST=127.0.0.1", "BASE_URL=" + s.brokerURL,
			"DATABASE_URL=sqlite:" + filepath.Join(dir, "broker.db"),
			"ENCRYPTION_KEY=" + randomKey(t), "STATE_KEY=" + stateKey,
			"REQUIRE_API_KEY=true", "API_KEYS=" + s.brokerKey, "LOG_LEVEL=debug",
		}, "broker")
		_, err := s.broker.waitFor(ctx, listeningRE("broker"))
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(s.broker.out.String(), "address already in use") {
			t.Fatalf("%v\n%s", err, s.broker.out)
		}
	}

	s.op = testenv.StartOP(t, s.brokerURL+"/auth/callback")
	s.registerProvider(t)

	env := []string{
		"PORT=0", "PORT_GRPC=0", "LISTEN_HOST=127.0.0.1",
		"BROKER_BASE_URL=" + s.brokerURL, "BROKER_API_KEY=" + s.brokerKey, "STATE_PUBLIC_KEYS=" + statePublicKeys(t, stateKey),
		"GATEWAY_API_KEYS=agent-e2e:" + s.agentKey + ";id-token", "LOG_LEVEL=debug",
	}
	for _, e := range gatewayEnv {
		env = append(env, e(s)...) // exec keeps the last value of a name
	}
	s.gateway = startProcess(t, "gateway", env, "gateway")
	m, err := s.gateway.waitFor(ctx, listeningRE("gateway-http"))
	if err != nil {
		t.Fatalf("%v\n%s", err, s.gateway.out)
	}
	s.gatewayURL = "http://" + m[1]

	s.ret = newReturnPage(t)
	if s.agent, err = sdk.New(s.gatewayURL, sdk.WithAPIKey(s.agentKey)); err != nil {
		t.Fatal(err)
	}
	return s
}

// registerProvider registers the OP by issuer, as an operator would.
func (s *opStack) registerProvider(t *testing.T) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"profile": map[string]any{
		"name": "example", "issuer": s.op.Issuer, "enable_discovery": true,
		"client_id": s.op.ClientID, "client_secret": s.op.ClientSecret,
		"scopes": []string{"openid", "email"},
	}})
	req, _ := http.NewRequest(http.MethodPost, s.brokerURL+"/providers", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", s.brokerKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		raw, _ := io.ReadAll(resp.Body)
		t.Fatalf("registering the OP: %d %s", resp.StatusCode, raw)
	}
}

// metric reads one series of the broker's Prometheus text (0 when the
// series has not been written yet).
func (s *opStack) metric(t *testing.T, series string) float64 {
	t.Helper()
	resp, err := http.Get(s.brokerURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if name, value, ok := strings.Cut(line, " "); ok && name == series {
			f, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("metric %s: %q", series, value)
			}
			return f
		}
	}
	return 0
}

// assertNoSecretsLogged stops the processes and checks that none of
// secrets reached their logs.
func assertNoSecretsLogged(t *testing.T, procs []*process, secrets ...string) {
	t.Helper()
	for _, p := range procs {
		p.stop()
		logs := p.out.String()
		for i, s := range secrets {
			if s != "" && strings.Contains(logs, s) {
				t.Errorf("secret #%d reached the %s log", i, p.name)
			}
		}
	}
}

// returnPage is the agent's return_url. It records the query the browser
// lands with and shows a page the browser can wait for.
type returnPage struct {
	URL    string
	landed chan url.Values
}

func newReturnPage(t *testing.T) *returnPage {
	t.Helper()
	r := &returnPage{landed: make(chan url.Values, 4)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/favicon.ico" {
			http.NotFound(w, req)
			return
		}
		select {
		case r.landed <- req.URL.Query():
		default:
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, `<!doctype html><html><head><title>agent</title></head>`+
			`<body><h1 id="landed">Back at the agent</h1></body></html>`)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// devProcess is a running `dromos dev`.
type devProcess struct {
	*process
	brokerURL  string
	gatewayURL string
}

var (
	devBrokerRE  = regexp.MustCompile(`^\s+broker\s+(http://\S+)`)
	devGatewayRE = regexp.MustCompile(`^\s+gateway HTTP\s+(http://\S+)`)
)

// startDev runs `dromos dev` on free ports and reads its banner.
func startDev(t *testing.T) *devProcess {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := &devProcess{process: startProcess(t, "dev", []string{}, "dev", "--data-dir", t.TempDir(),
		"--broker-port", "0", "--gateway-port", "0", "--grpc-port", "0")}
	b, err := p.waitFor(ctx, devBrokerRE)
	if err != nil {
		t.Fatalf("%v\n%s", err, p.out)
	}
	g, err := p.waitFor(ctx, devGatewayRE)
	if err != nil {
		t.Fatalf("%v\n%s", err, p.out)
	}
	p.brokerURL, p.gatewayURL = b[1], g[1]
	return p
}

// statePublicKeys is the gateway's STATE_PUBLIC_KEYS for the broker's key.
func statePublicKeys(t *testing.T, stateKey string) string {
	t.Helper()
	pubs, err := config.StatePublicKeys(config.Env{"STATE_KEY": stateKey})
	if err != nil {
		t.Fatal(err)
	}
	return pubs
}
