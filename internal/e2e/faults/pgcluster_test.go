package faults_test

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// pgCluster is a PostgreSQL server of the test's own, in a temporary
// directory, so it can be stopped and started without disturbing the tests
// that share DROMOS_TEST_POSTGRES_URL.
type pgCluster struct {
	bin  string // directory of initdb and pg_ctl
	dir  string
	port int
	// asPostgres runs commands as the postgres OS user, since the server
	// refuses to run as root.
	asPostgres bool
}

// newPGCluster initialises and starts a cluster listening only on
// 127.0.0.1, with trust authentication; it is stopped and removed when t
// ends. Without Debian's PostgreSQL binaries it skips t (fails in CI).
func newPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		skipOrFail(t, "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin: the outage test needs a cluster it can stop")
	}
	slices.SortFunc(bins, func(a, b string) int { return pgVersion(b) - pgVersion(a) })
	c := &pgCluster{bin: filepath.Dir(bins[0]), asPostgres: os.Geteuid() == 0}

	dir, err := os.MkdirTemp("", "dromos-faults-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	t.Cleanup(func() {
		_ = c.run("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop")
		os.RemoveAll(dir)
	})
	if c.asPostgres {
		u, err := user.Lookup("postgres")
		if err != nil {
			skipOrFail(t, "running as root without a postgres OS user to run the server as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.run("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "--no-sync", "--locale=C", "-E", "UTF8"); err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		c.port = freePort(t)
		err := c.start()
		if err == nil {
			return c
		}
		if attempt == 3 {
			t.Fatal(err)
		}
	}
}

// pgVersion is the major version in a /usr/lib/postgresql/N/bin path.
func pgVersion(path string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return n
}

func (c *pgCluster) data() string { return filepath.Join(c.dir, "data") }

// url is the cluster's postgres database; trust authentication needs no
// password.
func (c *pgCluster) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

func (c *pgCluster) start() error {
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=off", c.port, c.dir)
	return c.run("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "server.log"), "-o", opts, "-w", "-t", "60", "start")
}

// stop is a fast shutdown: sessions are terminated, as in a fail-over or
// a restart for maintenance.
func (c *pgCluster) stop() error {
	return c.run("pg_ctl", "-D", c.data(), "-m", "fast", "-w", "-t", "60", "stop")
}

func (c *pgCluster) run(tool string, args ...string) error {
	path := filepath.Join(c.bin, tool)
	var cmd *exec.Cmd
	if c.asPostgres {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return nil
}
