// Package cli is the dromos command line: it parses subcommands and flags,
// reads configuration once through package config, wires the services
// together and runs their servers with graceful shutdown.
package cli
