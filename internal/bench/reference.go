package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// referenceBody is the reference server's constant answer: the members and
// value sizes of a Dromos token answer for a fake-provider token, so that
// both sides move about the same bytes.
func referenceBody() []byte {
	return fmt.Appendf(nil, `{"access_token":"at-%040d","expires_at":"2030-01-01T00:00:00Z","expires_at_source":"expires_in",`+
		`"expires_in":3599,"provider":"%s","scope":"%s","token_type":"Bearer"}`+"\n", 1, providerName, fakeScope)
}

// referenceHandler answers GET /v1/token/{id} with the constant body: the
// least any HTTP server can do for the same request, which makes it the
// ceiling of this machine for this load.
func referenceHandler() http.Handler {
	body := referenceBody()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/token/{id}", func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		_, _ = w.Write(body)
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	return mux
}

// ProxyEnv, in the environment of the reference command, makes it serve a
// reverse proxy to that URL instead of the reference (see ServeRole).
const ProxyEnv = "DROMOS_BENCH_PROXY_TO"

// ServeRole is what the reference command runs until ctx ends: the
// reference server, or with ProxyEnv set a reverse proxy to that URL.
func ServeRole(ctx context.Context, getenv func(string) string, log *slog.Logger) error {
	if target := getenv(ProxyEnv); target != "" {
		return ServeProxy(ctx, "127.0.0.1:0", target, log)
	}
	return ServeReference(ctx, "127.0.0.1:0", log)
}

// ServeReference runs the reference server on addr until ctx ends, and
// announces its address on log the way Dromos processes do.
func ServeReference(ctx context.Context, addr string, log *slog.Logger) error {
	return serve(ctx, addr, "reference", referenceHandler(), log)
}

// ServeProxy runs a plain reverse proxy to target on addr until ctx ends:
// httputil.ReverseProxy with a keep-alive pool as large as the gateway's to
// the broker, and nothing else. Two of them in front of the reference are
// what the split design costs in transport alone (agent → gateway →
// broker), without any of Dromos's work.
func ServeProxy(ctx context.Context, addr, target string, log *slog.Logger) error {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("proxy target %q is not an absolute URL", target)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
	}
	rp.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	return serve(ctx, addr, "proxy", rp, log)
}

// serve runs h on addr until ctx ends, announcing the address as server
// name.
func serve(ctx context.Context, addr, name string, h http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	log.Info("listening", "server", name, "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
