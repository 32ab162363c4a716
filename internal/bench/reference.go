package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
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

// ServeReference runs the reference server on addr until ctx ends, and
// announces its address on log the way Dromos processes do.
func ServeReference(ctx context.Context, addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: referenceHandler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	log.Info("listening", "server", "reference", "addr", ln.Addr().String())
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
