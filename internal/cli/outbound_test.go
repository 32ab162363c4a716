package cli

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/netguard"
)

// A development broker (no production switch) still never dials
// cloud-metadata or link-local addresses, while loopback providers (the
// demo provider, a local Keycloak) keep working.
func TestOutboundClientRefusesMetadataInEveryMode(t *testing.T) {
	for _, production := range []bool{false, true} {
		hc := outboundClient(production)
		for _, target := range []string{
			"http://169.254.169.254/latest/meta-data/iam/security-credentials/",
			"http://[fd00:ec2::254]/latest/meta-data/",
			"http://100.100.100.200/latest/meta-data/",
			"http://169.254.10.10/",
			"http://[fe80::1]/",
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
			resp, err := hc.Do(req)
			cancel()
			if err == nil {
				resp.Body.Close()
				t.Fatalf("production=%v: %s answered %d; want a refused dial", production, target, resp.StatusCode)
			}
			if !errors.Is(err, netguard.ErrBlocked) {
				t.Errorf("production=%v: %s: err = %v; want netguard.ErrBlocked", production, target, err)
			}
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	resp, err := outboundClient(false).Get(srv.URL)
	if err != nil {
		t.Fatalf("development broker cannot reach a loopback provider: %v", err)
	}
	resp.Body.Close()
}
