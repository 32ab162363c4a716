// Command dromos is the Dromos OAuth connection broker: one binary for the
// broker, the gateway, the all-in-one dev mode and operator tools.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/dromos-dev/dromos/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Environ())
	stop()
	os.Exit(code)
}
