package netguard

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// Dialer returns a copy of base (a zero Dialer if nil) that refuses, just
// before each socket connects, destinations Classify refuses. The check
// runs on the resolved address of every attempt, so it holds for names
// that resolve differently over time and for every address a name has.
// An existing Control or ControlContext of base still runs after it.
func Dialer(base *net.Dialer, allowPrivate bool) *net.Dialer {
	d := new(net.Dialer)
	if base != nil {
		*d = *base
	}
	check := func(address string) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			// Not an IP socket (a Unix path, say): nothing a provider
			// URL should reach.
			return fmt.Errorf("%w: not an IP destination", ErrBlocked)
		}
		if c := Classify(ap.Addr(), allowPrivate); c != "" {
			return &BlockedError{Addr: ap.Addr().WithZone("").Unmap(), Class: c}
		}
		return nil
	}
	control := d.Control
	d.Control = func(network, address string, c syscall.RawConn) error {
		if err := check(address); err != nil {
			return err
		}
		if control != nil {
			return control(network, address, c)
		}
		return nil
	}
	// The standard library ignores Control when ControlContext is set, so
	// a base ControlContext needs the check too.
	if controlCtx := d.ControlContext; controlCtx != nil {
		d.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
			if err := check(address); err != nil {
				return err
			}
			return controlCtx(ctx, network, address, c)
		}
	}
	return d
}

// Transport returns an HTTP transport for provider calls that dials only
// through Dialer, uses no proxy, requires TLS 1.2 or later and bounds every
// phase of a request, so a slow or hostile endpoint cannot hold the broker.
// Callers still set a request deadline, refuse redirects and limit how much
// of a body they read.
func Transport(allowPrivate bool) *http.Transport {
	d := Dialer(&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}, allowPrivate)
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  30 * time.Second,
		ExpectContinueTimeout:  time.Second,
		IdleConnTimeout:        90 * time.Second,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    16,
		MaxResponseHeaderBytes: 64 << 10,
	}
}
