package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dromos-dev/dromos/internal/netlimit"
)

// listener is one server the process runs.
type listener struct {
	name  string
	ln    net.Listener
	serve func(net.Listener) error
	stop  func(context.Context) error
}

// httpListener wraps h in a server with the timeouts and limits every
// Dromos HTTP server uses.
func httpListener(name string, ln net.Listener, h http.Handler, log *slog.Logger) listener {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return listener{name: name, ln: ln, serve: srv.Serve, stop: srv.Shutdown}
}

// connLimiter is the process's connection cap (MAX_CONNECTIONS, or derived
// from the open-file limit), shared by every listener the process runs.
func connLimiter(override int, log *slog.Logger, reg prometheus.Registerer) (*netlimit.Limiter, error) {
	files, err := netlimit.FileLimit()
	if err != nil {
		log.Warn("could not read the open-file limit; MAX_CONNECTIONS defaults to the ceiling", "error", err, "ceiling", netlimit.Ceiling)
		files = 0
	}
	n, err := netlimit.Resolve(override, files)
	if err != nil {
		return nil, err
	}
	log.Info("connection cap", "max_connections", n, "open_file_limit", files)
	return netlimit.New(netlimit.Options{Max: n, Logger: log, Registerer: reg})
}

func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	return ln, nil
}

// runServers serves until ctx is done or one server fails, then shuts all
// of them down gracefully (in-flight requests get up to 15 s).
func runServers(ctx context.Context, log *slog.Logger, ls ...listener) error {
	errc := make(chan error, len(ls))
	for _, l := range ls {
		go func() {
			log.Info("listening", "server", l.name, "addr", l.ln.Addr().String())
			if err := l.serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s server: %w", l.name, err)
				return
			}
			errc <- nil
		}()
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, l := range ls {
		if err := l.stop(sctx); err != nil && first == nil {
			first = fmt.Errorf("stopping %s: %w", l.name, err)
		}
	}
	return first
}
