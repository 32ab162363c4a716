package cli

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// The consent link is bound to the first browser that opens it; the banner
// says so before a newcomer pastes it into a second one.
func TestBannerSaysTheLinkIsSingleBrowser(t *testing.T) {
	for _, gw := range []devGateway{{httpURL: "http://127.0.0.1:8090", grpcAddr: "127.0.0.1:9090"}, {}} {
		var b bytes.Buffer
		printBanner(&b, "http://127.0.0.1:8080", gw, ".dromos", "http://127.0.0.1:8080/demo")
		if !strings.Contains(b.String(), "The link works in one browser only") {
			t.Fatalf("banner:\n%s", b.String())
		}
	}
}

// The README's quick start gives the same warning, and a build command
// that leaves a binary for the `dromos …` commands of the docs.
func TestReadmeQuickStart(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	start := strings.Index(readme, "## Run it")
	end := strings.Index(readme, "## Test it")
	if start < 0 || end < start {
		t.Fatal("README has no Run it section")
	}
	quick := strings.Join(strings.Fields(readme[start:end]), " ")
	for _, want := range []string{"go build -o dromos ./cmd/dromos && ./dromos dev", "go run ./cmd/dromos dev",
		"The first build takes a while", "works in one browser only", "ask the application for a new link"} {
		if !strings.Contains(quick, want) {
			t.Errorf("README quick start lacks %q", want)
		}
	}
}
