package faults_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/dromos-dev/dromos/internal/config"
	"github.com/dromos-dev/dromos/internal/storage/storagetest"
)

// binary is the dromos command every test runs as separate processes.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dromos-faults-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "dromos")
	if out, err := exec.Command("go", "build", "-o", binary, "github.com/dromos-dev/dromos/cmd/dromos").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building dromos: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// inCI reports whether a missing prerequisite must fail the suite instead
// of skipping it.
func inCI() bool { return os.Getenv("CI") == "true" }

// skipOrFail skips t outside CI and fails it in CI, where every part of the
// suite is expected to run.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if inCI() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// postgresURL is a fresh schema on the shared test database.
func postgresURL(t *testing.T) string {
	t.Helper()
	if os.Getenv(storagetest.PostgresEnv) == "" {
		skipOrFail(t, "%s is unset: the replica suite needs PostgreSQL", storagetest.PostgresEnv)
	}
	return storagetest.PostgresURL(t)
}

// secrets are the keys one deployment shares: every broker replica gets
// the same encryption and state keys, the gateways the same state key.
type secrets struct {
	encryptionKey string
	stateKey      string
	// statePublicKeys are what the gateways get instead of stateKey.
	statePublicKeys string
	agentKey        string
}

func newSecrets(t *testing.T) secrets {
	t.Helper()
	key := func() string {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(b[:])
	}
	var k [16]byte
	if _, err := rand.Read(k[:]); err != nil {
		t.Fatal(err)
	}
	s := secrets{encryptionKey: key(), stateKey: key(), agentKey: hex.EncodeToString(k[:])}
	pubs, err := config.StatePublicKeys(config.Env{"STATE_KEY": s.stateKey})
	if err != nil {
		t.Fatal(err)
	}
	s.statePublicKeys = pubs
	return s
}

// agentName is the client name the gateways know the agent key by.
const agentName = "agent"
