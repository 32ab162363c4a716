// Package promreg registers Prometheus collectors the way every Dromos
// component does: on the registry it is given (never the global one),
// reusing an identical collector that is already there, so components can
// share one registry, and panicking on any other conflict, which is a
// programming error found at start-up.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg and returns the collector to use: c, or
// the identical one already registered. A nil reg registers nothing.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("registering metrics: " + err.Error())
	}
	return c
}
