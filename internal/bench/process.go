package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// startTimeout bounds how long a process may take to report its listeners
// (a PostgreSQL broker migrates first).
const startTimeout = 60 * time.Second

// buildDromos compiles the dromos command into dir. It runs the go tool of
// the surrounding environment, from the module the benchmark belongs to.
func buildDromos(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "dromos")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/dromos-dev/dromos/cmd/dromos")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building dromos: %w\n%s", err, out)
	}
	return bin, nil
}

// process is a running server whose stderr (its JSON log) goes to a file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	addrs   map[string]string // server name → host:port, from its "listening" lines
	exited  chan struct{}
}

// errPortTaken means a process could not listen on the port it was given:
// something else took it between freePort and the process's start.
var errPortTaken = errors.New("port taken")

// freePort asks the kernel for a free loopback port. It is free only until
// someone else takes it, so a caller retries on errPortTaken.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// listenLine is the part of a Dromos log record naming a listener.
type listenLine struct {
	Msg    string `json:"msg"`
	Server string `json:"server"`
	Addr   string `json:"addr"`
}

// startProcess runs c with env (and nothing else of ours), and waits until
// its log has announced every listener in servers. Every server is started
// on the port its configuration names and announces the address it got, so
// a server started on port 0 is found without any guess.
func startProcess(ctx context.Context, name string, c Command, logDir string, servers ...string) (*process, error) {
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Env = c.Env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, addrs: map[string]string{}, exited: make(chan struct{})}
	found := make(chan listenLine, len(servers)+4)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = logFile.Write(append(line, '\n'))
			var l listenLine
			if json.Unmarshal(line, &l) == nil && l.Msg == "listening" && l.Addr != "" {
				select {
				case found <- l:
				default:
				}
			}
		}
		// Drain whatever the scanner refused (an over-long line), so the
		// child never blocks on a full pipe.
		_, _ = logFile.ReadFrom(stderr)
	}()
	// Wait closes the pipe, so it must come after the last read.
	go func() { <-readDone; _ = cmd.Wait(); close(p.exited) }()

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	for !p.hasAll(servers) {
		select {
		case l := <-found:
			p.addrs[l.Server] = l.Addr
		case <-p.exited:
			if log, _ := os.ReadFile(logPath); bytes.Contains(log, []byte("address already in use")) {
				return nil, fmt.Errorf("%s: %w; see %s", name, errPortTaken, logPath)
			}
			return nil, fmt.Errorf("%s exited at start (%s); see %s", name, cmd.ProcessState, logPath)
		case <-timer.C:
			p.stop()
			return nil, fmt.Errorf("%s announced no listener within %s; see %s", name, startTimeout, logPath)
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		}
	}
	return p, nil
}

func (p *process) hasAll(servers []string) bool {
	for _, s := range servers {
		if p.addrs[s] == "" {
			return false
		}
	}
	return true
}

func (p *process) url(server string) string { return "http://" + p.addrs[server] }

func (p *process) pid() int { return p.cmd.Process.Pid }

// stop asks for a graceful shutdown and kills the process if it has not
// ended within 15 s.
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

// errNoProcStatus means the peak RSS could not be read (not Linux).
var errNoProcStatus = errors.New("no /proc status")

// resetPeakRSS restarts the kernel's high-water mark of the process's
// resident set (Linux ≥ 4.0), so the next peakRSS covers one point only.
// It reports whether the reset took.
func resetPeakRSS(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// peakRSS is the process's peak resident set size in bytes (VmHWM).
func peakRSS(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errNoProcStatus, err)
	}
	return parseVmHWM(string(b))
}

// parseVmHWM finds "VmHWM:  12345 kB" in a /proc/PID/status text.
func parseVmHWM(status string) (uint64, error) {
	for _, line := range strings.Split(status, "\n") {
		rest, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%w: odd VmHWM line %q", errNoProcStatus, line)
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: odd VmHWM line %q", errNoProcStatus, line)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("%w: no VmHWM line", errNoProcStatus)
}

// userHZ is the unit of the CPU times in /proc/PID/stat: fixed at 100 on
// Linux whatever the kernel's own tick rate.
const userHZ = 100

// cpuTime is the CPU time (user + system) the process has used so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errNoProcStatus, err)
	}
	return parseCPUTime(string(b))
}

// parseCPUTime reads utime and stime from a /proc/PID/stat line. The command
// name in parentheses may hold spaces, so fields are counted from the last
// ')'.
func parseCPUTime(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: no command name in stat", errNoProcStatus)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: short stat line", errNoProcStatus)
	}
	var ticks uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: odd CPU time %q", errNoProcStatus, s)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
