package image

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/storage/storagetest"
)

func TestMain(m *testing.M) {
	if root := os.Getenv(jailEnv); root != "" {
		err := runJailed(root, os.Args[1:])
		fmt.Fprintln(os.Stderr, "image test jail:", err)
		os.Exit(111)
	}
	code := m.Run()
	if rootfsDir != "" {
		os.RemoveAll(filepath.Dir(rootfsDir))
	}
	os.Exit(code)
}

const testVersion = "image-test"

var (
	rootfsOnce sync.Once
	rootfsDir  string
	rootfsErr  error
)

// rootfs builds the image's root filesystem once per test binary with the
// Dockerfile's own script.
func rootfs(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "the image test needs root (chroot, mount namespace, setuid)")
	}
	rootfsOnce.Do(func() {
		tmp, err := os.MkdirTemp("", "dromos-image-")
		if err != nil {
			rootfsErr = err
			return
		}
		dir := filepath.Join(tmp, "rootfs")
		cmd := exec.Command("sh", "../../../deploy/image/build-rootfs.sh", dir, testVersion)
		out, err := cmd.CombinedOutput()
		if err != nil {
			rootfsErr = fmt.Errorf("build-rootfs.sh: %v\n%s", err, out)
			return
		}
		rootfsDir = dir
	})
	if rootfsErr != nil {
		t.Fatal(rootfsErr)
	}
	return rootfsDir
}

func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// TestRootfsHoldsOnlyTheStaticBinary checks the image's contents: the
// files the Dockerfile promises and nothing else (no shell), a binary that
// needs no loader or shared library, the user entries.
func TestRootfsHoldsOnlyTheStaticBinary(t *testing.T) {
	root := rootfs(t)
	var got []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." && !d.IsDir() {
			got = append(got, "/"+rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/etc/group", "/etc/passwd", "/etc/ssl/certs/ca-certificates.crt", "/usr/local/bin/dromos"}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("image files = %v, want exactly %v", got, want)
	}

	f, err := elf.Open(filepath.Join(root, imageEntrypoint))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary names a program interpreter: it is dynamically linked and cannot start in a scratch image")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("binary needs shared libraries %v (err %v)", libs, err)
	}

	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(passwd), fmt.Sprintf("dromos:x:%d:%d:", imageUID, imageGID)) {
		t.Errorf("/etc/passwd has no dromos entry for %d:%d:\n%s", imageUID, imageGID, passwd)
	}
	st, err := os.Stat(filepath.Join(root, imageWorkdir))
	if err != nil {
		t.Fatal(err)
	}
	if s := st.Sys().(*syscall.Stat_t); s.Uid != imageUID || s.Gid != imageGID {
		t.Errorf("%s owned by %d:%d, want %d:%d", imageWorkdir, s.Uid, s.Gid, imageUID, imageGID)
	}
}

// TestImageRunsBrokerAndGateway runs the binary from the image's tree as
// the image would and drives it: version, a write to the read-only root
// refused, migrations, a broker and a gateway answering their probes, and
// the gateway reaching the broker with the compose file's generated keys.
func TestImageRunsBrokerAndGateway(t *testing.T) {
	root := rootfs(t)
	db := storagetest.PostgresURL(t)
	keys := generatedKeys(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	out, err := runOnce(ctx, root, nil, "version")
	if err != nil || !strings.Contains(out, testVersion) {
		t.Fatalf("dromos version = %q, %v; want it to name %q", out, err, testVersion)
	}

	// The default DATABASE_URL is SQLite in the working directory: on the
	// read-only root it must fail, and leave nothing behind.
	if out, err := runOnce(ctx, root, nil, "migrate"); err == nil {
		t.Fatalf("migrate to sqlite:dromos.db on a read-only root succeeded:\n%s", out)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, imageWorkdir)); len(entries) > 0 {
		t.Fatalf("the read-only root was written to: %s holds %v", imageWorkdir, entries)
	}

	if out, err := runOnce(ctx, root, []string{"DATABASE_URL=" + db}, "migrate"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}

	broker := start(t, root, "broker", []string{
		"DATABASE_URL=" + db, "LISTEN_HOST=127.0.0.1", "PORT=0",
		"ENCRYPTION_KEY=" + keys["ENCRYPTION_KEY"], "STATE_KEY=" + keys["STATE_KEY"],
		"API_KEY=" + keys["BROKER_API_KEY"],
	}, "broker")
	brokerURL := "http://" + broker.addr["broker"]
	gateway := start(t, root, "gateway", []string{
		"LISTEN_HOST=127.0.0.1", "PORT=0", "PORT_GRPC=0",
		"BROKER_BASE_URL=" + brokerURL, "BROKER_API_KEY=" + keys["BROKER_API_KEY"],
		"STATE_KEY=" + keys["STATE_KEY"], "GATEWAY_API_KEYS=agent:" + keys["AGENT_API_KEY"],
	}, "gateway-http", "gateway-grpc")
	gatewayURL := "http://" + gateway.addr["gateway-http"]

	for _, p := range []*proc{broker, gateway} {
		p.assertConfined(t)
	}

	for _, c := range []struct {
		name, url, key string
		want           int
	}{
		{"broker health", brokerURL + "/health", "", 200},
		{"broker ready", brokerURL + "/ready", "", 200},
		{"broker routes need its API key", brokerURL + "/providers", "", 401},
		{"gateway health", gatewayURL + "/health", "", 200},
		{"gateway needs an agent key", gatewayURL + "/v1/connections?user_id=alice", "", 401},
		{"gateway reaches the broker", gatewayURL + "/v1/connections?user_id=alice", keys["AGENT_API_KEY"], 200},
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
		if c.key != "" {
			req.Header.Set("Authorization", "Bearer "+c.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: GET %s = %d, want %d: %s", c.name, c.url, resp.StatusCode, c.want, body)
		}
	}
	for _, p := range []*proc{broker, gateway} {
		for _, k := range keys {
			if strings.Contains(p.log.String(), k) {
				t.Errorf("%s log holds a generated key", p.name)
			}
		}
	}
}

// generatedKeys runs deploy/compose/keys.sh, the compose file's key
// generator, and returns what it printed.
func generatedKeys(t *testing.T) map[string]string {
	t.Helper()
	out, err := exec.Command("sh", "../../../deploy/compose/keys.sh").Output()
	if err != nil {
		t.Fatalf("keys.sh: %v", err)
	}
	keys := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			keys[k] = v
		}
	}
	for _, k := range []string{"ENCRYPTION_KEY", "STATE_KEY", "BROKER_API_KEY", "AGENT_API_KEY", "POSTGRES_PASSWORD"} {
		if keys[k] == "" {
			t.Fatalf("keys.sh printed no %s:\n%s", k, out)
		}
	}
	return keys
}

// jailed is the command that runs `dromos args…` inside the image's tree.
func jailed(ctx context.Context, root string, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(slices.Clip(env), jailEnv+"="+root)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	return cmd
}

func runOnce(ctx context.Context, root string, env []string, args ...string) (string, error) {
	out, err := jailed(ctx, root, env, args...).CombinedOutput()
	return string(out), err
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  *syncBuffer
	addr map[string]string // server name → listening address
}

// start runs `dromos sub` in the image's tree until the test ends and
// waits for each named server's "listening" log line.
func start(t *testing.T, root, sub string, env []string, servers ...string) *proc {
	t.Helper()
	cmd := jailed(context.Background(), root, env, sub)
	p := &proc{name: sub, cmd: cmd, log: new(syncBuffer), addr: map[string]string{}}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", sub, p.log.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for len(p.addr) < len(servers) {
		select {
		case <-exited:
			t.Fatalf("%s exited before listening:\n%s", sub, p.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen within 60s:\n%s", sub, p.log.String())
		}
		sc := bufio.NewScanner(strings.NewReader(p.log.String()))
		for sc.Scan() {
			var rec struct{ Msg, Server, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "listening" && slices.Contains(servers, rec.Server) {
				p.addr[rec.Server] = rec.Addr
			}
		}
	}
	return p
}

// assertConfined checks, from the kernel's view of the running process,
// that it runs as the image would: uid/gid 65532 without supplementary
// groups, no_new_privs, root at the image's tree, mounted read-only.
func (p *proc) assertConfined(t *testing.T) {
	t.Helper()
	pid := p.cmd.Process.Pid
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	ids := fmt.Sprintf("%d %d %d %d", imageUID, imageUID, imageUID, imageUID)
	if fields["Uid"] != ids || fields["Gid"] != ids || fields["Groups"] != "" || fields["NoNewPrivs"] != "1" {
		t.Errorf("%s runs with Uid %q Gid %q Groups %q NoNewPrivs %q; want %s, %s, none, 1",
			p.name, fields["Uid"], fields["Gid"], fields["Groups"], fields["NoNewPrivs"], ids, ids)
	}
	if fields["CapEff"] != "0000000000000000" {
		t.Errorf("%s has effective capabilities %s", p.name, fields["CapEff"])
	}
	mounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	rootRO := false
	for _, line := range strings.Split(string(mounts), "\n") {
		// mountinfo: id parent major:minor root mount-point options …
		f := strings.Fields(line)
		if len(f) > 5 && f[4] == "/" {
			rootRO = slices.Contains(strings.Split(f[5], ","), "ro")
		}
	}
	if !rootRO {
		t.Errorf("%s's root is not mounted read-only:\n%s", p.name, mounts)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
