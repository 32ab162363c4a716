package testenv

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	opstorage "github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// OP is a running independent OpenID Provider.
type OP struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	Username     string
	Password     string
	Server       *httptest.Server
}

// StartOP serves zitadel/oidc's example OpenID Provider on 127.0.0.1 with
// one confidential web client allowed to redirect to redirectURIs.
func StartOP(t testing.TB, redirectURIs ...string) *OP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	o := &OP{Issuer: issuer, ClientID: "dromos-e2e", ClientSecret: "e2e-client-secret:with/odd%chars"}
	users := opstorage.NewUserStore(issuer)
	clients := map[string]*opstorage.Client{o.ClientID: opstorage.WebClient(o.ClientID, o.ClientSecret, redirectURIs...)}
	store := opstorage.NewStorageWithClients(users, clients)
	// A nil logger keeps the example from replacing the process-wide slog
	// default.
	router := exampleop.SetupServer(issuer, store, nil, false, op.WithAllowInsecure())
	srv := httptest.NewUnstartedServer(router)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	o.Server = srv
	o.Username = "test-user@127.0.0.1"
	o.Password = "verysecure"
	return o
}

// Handler exposes the OP's handler for tests that wrap it (to count or
// break requests).
func (o *OP) Handler() http.Handler { return o.Server.Config.Handler }
