package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dromos-dev/dromos/internal/config"
	"github.com/dromos-dev/dromos/internal/demoprovider"
	"github.com/dromos-dev/dromos/internal/logging"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/refresh"
)

const (
	demoPrefix   = "/demo"
	demoClientID = "dromos-dev"
)

type devFlags struct {
	dataDir                           string
	listen                            string
	brokerPort, gatewayPort, grpcPort int
	logLevel                          string
	// demoAccessTTL is how long the demo provider's access tokens live:
	// short to watch expiry and refresh (the proxy across an expiry).
	demoAccessTTL time.Duration
}

func runDev(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	var f devFlags
	fs := newFlags("dev", "Runs the whole system in one process for development: the broker, the gateway and a built-in\n"+
		"demo OIDC provider, on an embedded SQLite database with keys generated on first run.\n"+
		"NOT FOR PRODUCTION: guards are off and keys sit in the data folder. Requests addressed (Host header)\n"+
		"to any name but localhost, 127.0.0.1, [::1] or the --listen host are refused (421).", "", ios)
	fs.StringVar(&f.dataDir, "data-dir", ".dromos", "folder for the SQLite database and generated keys (created if missing)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1", "address every server binds to")
	fs.IntVar(&f.brokerPort, "broker-port", 8080, "broker HTTP port (0 picks a free one)")
	fs.IntVar(&f.gatewayPort, "gateway-port", 8090, "gateway HTTP port (0 picks a free one)")
	fs.IntVar(&f.grpcPort, "grpc-port", 9090, "gateway gRPC port (0 picks a free one)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&f.demoAccessTTL, "demo-access-token-ttl", demoprovider.DefaultAccessTokenTTL,
		"lifetime of the demo provider's access tokens, from 1s to 24h (short to watch tokens expire and refresh)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.demoAccessTTL < time.Second || f.demoAccessTTL > 24*time.Hour {
		return fmt.Errorf("--demo-access-token-ttl must be from 1s to 24h")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("--log-level must be debug, info, warn or error")
	}
	log := logging.New(ios.err, level)
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return fmt.Errorf("creating data folder: %w", err)
	}
	secrets, signingKey, created, err := loadDevSecrets(f.dataDir)
	if err != nil {
		return err
	}
	if created {
		log.Info("generated development keys", "file", filepath.Join(f.dataDir, devSecretsFile))
	}

	brokerLn, err := listen(net.JoinHostPort(f.listen, strconv.Itoa(f.brokerPort)))
	if err != nil {
		return err
	}
	baseURL := "http://" + publicHostPort(brokerLn.Addr(), f.listen)

	cfgEnv := config.Env{
		"BASE_URL":       baseURL,
		"DATABASE_URL":   "sqlite:" + filepath.Join(f.dataDir, "dromos.db"),
		"ENCRYPTION_KEY": secrets.EncryptionKey,
		"STATE_KEY":      secrets.StateKey,
		"LOG_LEVEL":      f.logLevel,
		// A local sandbox: scripts and tests may run many consents a
		// minute from one address.
		"RATE_LIMIT_CALLBACK": "0",
		"RATE_LIMIT_CONSENT":  "0",
		// Its agents are anonymous, so no agent option can ask for the
		// id_token; a sandbox shows it to everyone.
		"EXPOSE_ID_TOKEN": "true",
	}
	if v, ok := env["MCP_CLIENT_METADATA_URL"]; ok {
		// Where the Client ID Metadata Document is published, for MCP
		// servers that accept one (dev serves it on plain http otherwise
		// never uses it).
		cfgEnv["MCP_CLIENT_METADATA_URL"] = v
	}
	cfg, err := config.LoadBroker(cfgEnv)
	if err != nil {
		return err
	}
	reg := newRegistry()
	svc, store, err := buildBroker(ctx, cfg, log, reg, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	defer svc.Close()

	issuer := baseURL + demoPrefix
	demo, err := demoprovider.New(demoprovider.Options{
		Issuer: issuer, ClientID: demoClientID, ClientSecret: secrets.DemoClientSecret,
		RedirectURIs: []string{cfg.RedirectURI()}, SigningKey: signingKey, Logger: log.With("component", "demo-provider"),
		Now: time.Now, AccessTokenTTL: f.demoAccessTTL,
		StateFile: filepath.Join(f.dataDir, "demo-provider.json"),
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(demoPrefix+"/", http.StripPrefix(demoPrefix, demo.Handler()))
	dc := newDevConfirm(baseURL, log.With("component", "dev-return"))
	mux.HandleFunc("GET /dev/return", dc.returnPage)
	mux.HandleFunc("POST /dev/confirm", dc.confirmPost)
	mux.Handle("/", svc.Handler())

	// One cap for the whole process: broker and gateway share its files.
	lim, err := connLimiter(0, log, reg)
	if err != nil {
		return err
	}
	servers := []listener{httpListener("broker", lim.Listener("broker", brokerLn), devHostGuard(mux, log, f.listen, urlHost(baseURL)), log)}
	gw, err := startDevGateway(ctx, f, baseURL, secrets, log, lim)
	if err != nil {
		return err
	}
	// The gateway's listeners stop first: the last one's stop hands the
	// proxy's queued audit records to the broker, still serving then.
	servers = append(gw.listeners, servers...)

	// Register the demo provider once the broker answers, through the same
	// discovery path a real issuer takes.
	ready := make(chan error, 1)
	go func() {
		ready <- registerDemo(ctx, svc, issuer, secrets.DemoClientSecret)
	}()
	stopWorker := startWorker(ctx, svc, refresh.AheadOptions{ReadWindow: cfg.RefreshAheadReadWindow})
	defer stopWorker()
	errc := make(chan error, 1)
	go func() { errc <- runServers(ctx, log, servers...) }()
	select {
	case err := <-ready:
		if err != nil {
			return fmt.Errorf("registering the demo provider: %w", err)
		}
	case err := <-errc:
		return err
	}
	printBanner(ios.out, baseURL, gw, f.dataDir, issuer)
	return <-errc
}

func registerDemo(ctx context.Context, svc interface {
	EnsureProvider(context.Context, provider.Profile) (string, error)
}, issuer, secret string) error {
	var err error
	for i := 0; i < 50; i++ {
		_, err = svc.EnsureProvider(ctx, provider.Profile{
			Name: "demo", DisplayName: "Dromos demo provider", Issuer: issuer, EnableDiscovery: true,
			ClientID: demoClientID, ClientSecret: secretString(secret),
			Scopes:                  []string{"openid", "email", "profile", "offline_access", "demo.read"},
			TokenEndpointAuthMethod: provider.AuthBasic,
			// Its API is its own root: /v1/proxy/{id}/userinfo reads the
			// demo userinfo as the connection's user.
			APIBaseURLs: []string{issuer},
		})
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return err
}

// publicHostPort is how a browser on this machine reaches addr.
func publicHostPort(addr net.Addr, listenHost string) string {
	_, port, _ := net.SplitHostPort(addr.String())
	host := listenHost
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func printBanner(w io.Writer, brokerURL string, gw devGateway, dataDir, issuer string) {
	line := strings.Repeat("─", 72)
	fmt.Fprintf(w, "\n%s\n  Dromos dev — DEVELOPMENT MODE, NOT FOR PRODUCTION\n  (guards off, gateway open to anyone, keys kept in %s)\n%s\n", line, dataDir, line)
	fmt.Fprintf(w, "  broker          %s\n", brokerURL)
	fmt.Fprintf(w, "  callback        %s/auth/callback\n", brokerURL)
	fmt.Fprintf(w, "  demo provider   %s  (name: demo)\n", issuer)
	if gw.httpURL != "" {
		fmt.Fprintf(w, "  gateway HTTP    %s\n", gw.httpURL)
		fmt.Fprintf(w, "  gateway gRPC    %s\n", gw.grpcAddr)
	}
	fmt.Fprintf(w, "  data folder     %s\n%s\n", dataDir, line)
	api, path := gw.httpURL, "/v1/request-connection"
	body := `{"user_id":"alice","provider_name":"demo","scopes":["openid","email","offline_access"],"return_url":"` + brokerURL + `/dev/return"}`
	if api == "" {
		api, path = brokerURL, "/auth/consent-spec"
		body = `{"workspace_id":"alice","provider_name":"demo","scopes":["openid","email","offline_access"],"return_url":"` + brokerURL + `/dev/return"}`
	}
	fmt.Fprintf(w, "1. Start a connection:\n\n  curl -s -X POST %s%s \\\n    -H 'Content-Type: application/json' \\\n    -d '%s'\n\n", api, path, body)
	fmt.Fprintf(w, "2. Open the authUrl from the answer in a browser and click Approve.\n"+
		"   The link works in one browser only, the first that opens it; for another browser, start a new connection.\n\n")
	if gw.httpURL != "" {
		fmt.Fprintf(w, "3. Fetch the token:\n\n  curl -s %s/v1/token/CONNECTION_ID\n%s\n\n", gw.httpURL, line)
	} else {
		fmt.Fprintf(w, "3. Fetch the token:\n\n  curl -s %s/connections/CONNECTION_ID/token\n%s\n\n", brokerURL, line)
	}
}
