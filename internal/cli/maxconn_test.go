package cli

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/netlimit"
)

// A MAX_CONNECTIONS the open-file limit cannot hold stops `dromos gateway`
// at start, naming the variable, instead of running with a cap that accept
// errors would reach first.
func TestGatewayRefusesMaxConnectionsAboveFileLimit(t *testing.T) {
	files, err := netlimit.FileLimit()
	if err != nil || files == 0 || files >= 1_000_000 {
		t.Skipf("open-file limit %d (%v): no MAX_CONNECTIONS above it is accepted by the parser", files, err)
	}
	var stderr bytes.Buffer
	code := Run(context.Background(), []string{"gateway"}, &bytes.Buffer{}, &stderr, []string{
		"PORT=0", "PORT_GRPC=0", "LISTEN_HOST=127.0.0.1",
		"BROKER_BASE_URL=http://127.0.0.1:1", "STATE_KEY=ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=",
		"GATEWAY_ALLOW_ANONYMOUS=true", "LOG_LEVEL=error",
		"MAX_CONNECTIONS=" + strconv.FormatUint(files, 10),
	})
	if code != 1 || !strings.Contains(stderr.String(), "MAX_CONNECTIONS="+strconv.FormatUint(files, 10)+" is not below the open-file limit") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}
