// Command dromos-bench is the load benchmark behind `make bench`: it starts
// Dromos processes and a reference server and prints their figures side by
// side (see docs/PERFORMANCE.md).
package main

import (
	"context"
	"crypto/rand"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dromos-dev/dromos/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	code := bench.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv, self, bench.Deps{Now: time.Now, Rand: rand.Reader})
	stop()
	os.Exit(code)
}
