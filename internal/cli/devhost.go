package cli

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/dromos-dev/dromos/internal/httpapi"
)

// devHostGuard answers only requests addressed to a loopback name or to
// one of hosts (the --listen host and the host of the URLs dev announces).
//
// In dev the guards are off and the gateway is anonymous, so without it a
// web page could use DNS rebinding (attacker.example re-resolved to
// 127.0.0.1) to read connections and tokens as its own origin: the browser
// then still sends Host: attacker.example, which is refused here. Only a
// name the developer chose, or a loopback one, reaches the handlers.
func devHostGuard(h http.Handler, log *slog.Logger, hosts ...string) http.Handler {
	allowed := map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}
	for _, host := range hosts {
		if n := hostName(host); n != "" {
			allowed[n] = true
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed[hostName(r.Host)] {
			httpapi.WriteError(w, r, log, &httpapi.Error{
				Status: http.StatusMisdirectedRequest, Code: "misdirected_request",
				Message: "dromos dev answers only requests addressed to localhost, 127.0.0.1, [::1] or the --listen host",
				Cause:   fmt.Errorf("refused Host %q", r.Host),
			})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// hostName is the lower-case host of a Host header or --listen value,
// without port or IPv6 brackets.
func hostName(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
}

// urlHost is the host of an absolute URL dev printed.
func urlHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}
