package cli_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/cli"
)

func TestRotateKeysCommand(t *testing.T) {
	db := "DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "d.db")
	k1 := "ENCRYPTION_KEY=AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
	st := "STATE_KEY=ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
	var out, errb bytes.Buffer
	if code := cli.Run(context.Background(), []string{"rotate-keys"}, &out, &errb, []string{db, k1, st}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "ciphertexts still on old keys: 0") {
		t.Fatalf("output %q", out.String())
	}
	out.Reset()
	// A bad key list is refused, naming the variable and not the value.
	code := cli.Run(context.Background(), []string{"rotate-keys", "--check"}, &out, &errb,
		[]string{db, "ENCRYPTION_KEYS=2:not-base64,1:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=", st})
	if code == 0 || !strings.Contains(errb.String(), "ENCRYPTION_KEYS entry 1") || strings.Contains(errb.String(), "not-base64") {
		t.Fatalf("bad keys: exit %d, %q", code, errb.String())
	}
}
