package provider

import (
	"net/url"
	"testing"

	"github.com/dromos-dev/dromos/internal/exchange"
)

func TestResourceIndicator(t *testing.T) {
	p := Profile{Name: "mcp-x", ClientID: "c", AuthURL: "https://as.example/authorize", TokenURL: "https://as.example/token",
		TokenEndpointAuthMethod: AuthNone, Resource: "https://mcp.example.com/mcp", AuthParams: map[string]string{"x": "1"}}
	p.Normalize()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	raw, err := p.AuthorizationURL(p.AuthURL, AuthRequest{ClientID: "c", RedirectURI: "https://b/cb", State: "s", CodeChallenge: "ch"})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(raw)
	if got := u.Query().Get("resource"); got != p.Resource {
		t.Fatalf("authorization URL resource = %q (%s)", got, raw)
	}
	var ep exchange.Endpoint
	p.ConfigureEndpoint(&ep)
	if ep.Resource != p.Resource {
		t.Fatalf("endpoint resource = %q", ep.Resource)
	}
	bad := p
	bad.AuthParams = map[string]string{"resource": "https://evil.example"}
	bad.Resource = "not a url"
	if err := bad.Validate(); err == nil {
		t.Fatal("auth_params resource and a non-URL resource were accepted")
	}
}
