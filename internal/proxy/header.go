package proxy

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// clone gives every attempt its own copy of the upstream URL.
func clone(u *url.URL) *url.URL { c := *u; return &c }

// hopByHop are the connection-level headers of RFC 9110 §7.6.1 (and the
// old Proxy-Connection and Keep-Alive), which a proxy must not forward.
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// outboundHeader is the agent's header without what must not reach the
// provider: hop-by-hop headers and those the Connection header names, the
// agent's own credentials for the gateway (Authorization, X-Api-Key),
// cookies, Proxy-* headers and the gateway's own X-Dromos-* controls.
func outboundHeader(in http.Header) http.Header {
	out := in.Clone()
	if out == nil {
		out = http.Header{}
	}
	removeConnectionHeaders(out)
	for k := range out {
		switch {
		case k == "Authorization", k == "Cookie", k == "X-Api-Key", k == "Host",
			strings.HasPrefix(k, "Proxy-"), strings.HasPrefix(k, "X-Dromos-"):
			delete(out, k)
		}
	}
	if _, ok := out["User-Agent"]; !ok {
		out["User-Agent"] = nil // net/http then sends none rather than its own
	}
	return out
}

// copyResponseHeader copies the provider's header to the agent's answer,
// without hop-by-hop headers and without cookies: a provider session is a
// credential the agent must not hold either.
func copyResponseHeader(dst, src http.Header) {
	h := src.Clone()
	removeConnectionHeaders(h)
	delete(h, "Set-Cookie")
	delete(h, "Set-Cookie2")
	for k, vs := range h {
		dst[k] = vs
	}
}

func removeConnectionHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				delete(h, http.CanonicalHeaderKey(name))
			}
		}
	}
	for _, k := range hopByHop {
		delete(h, k)
	}
}
