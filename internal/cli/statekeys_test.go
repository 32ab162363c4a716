package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/cli"
	"github.com/dromos-dev/dromos/internal/config"
	"github.com/dromos-dev/dromos/internal/state"
)

// The gateway's STATE_PUBLIC_KEYS come from the broker's keys, and keygen
// prints the ones of the key it generates.
func TestStatePublicKeysCommand(t *testing.T) {
	const sk = "YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8="
	var out, errb bytes.Buffer
	if code := cli.Run(context.Background(), []string{"state-public-keys"}, &out, &errb, []string{"STATE_KEYS=3:" + sk}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	keys, err := config.StateKeys(config.Env{"STATE_KEYS": "3:" + sk})
	if err != nil {
		t.Fatal(err)
	}
	pubs, err := state.PublicKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	want := "STATE_PUBLIC_KEYS=" + state.FormatPublicKeys(pubs) + "\n"
	if out.String() != want || strings.Contains(out.String(), sk) {
		t.Fatalf("output %q, want %q", out.String(), want)
	}
	g, err := config.LoadGateway(config.Env{"BROKER_BASE_URL": "http://b:1", "GATEWAY_ALLOW_ANONYMOUS": "true",
		"STATE_PUBLIC_KEYS": strings.TrimSpace(strings.TrimPrefix(out.String(), "STATE_PUBLIC_KEYS="))})
	if err != nil || len(g.StatePublicKeys) != 1 || g.StatePublicKeys[0].ID != 3 {
		t.Fatalf("gateway reading the printed keys: %+v, %v", g.StatePublicKeys, err)
	}

	out.Reset()
	if code := cli.Run(context.Background(), []string{"keygen"}, &out, &errb, nil); code != 0 {
		t.Fatalf("keygen exit %d: %s", code, errb.String())
	}
	env := config.Env{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	keys, err = config.StateKeys(env)
	if err != nil {
		t.Fatal(err)
	}
	pubs, _ = state.PublicKeys(keys)
	if env["STATE_PUBLIC_KEYS"] != state.FormatPublicKeys(pubs) {
		t.Fatalf("keygen printed %q", out.String())
	}

	if code := cli.Run(context.Background(), []string{"state-public-keys"}, &out, &errb, nil); code == 0 {
		t.Fatal("state-public-keys without STATE_KEY succeeded")
	}
}
