package cli

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/dromos-dev/dromos/internal/config"
	"github.com/dromos-dev/dromos/internal/database"
	"github.com/dromos-dev/dromos/internal/state"
)

// Version is set at build time with -ldflags "-X …/internal/cli.Version=…".
var Version = "dev"

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, io ioSet, env config.Env) error
}

type ioSet struct{ out, err io.Writer }

func commands() []command {
	return []command{
		{"broker", "run the broker service (consent, callback, token vault)", runBroker},

		{"gateway", "run the gateway service (the v1 REST and gRPC API for agents)", runGateway},
		{"serve", "run the broker and the gateway in one process (the gateway calls the broker in memory)", runServe},
		{"dev", "run broker, gateway and a demo OIDC provider in one process (not for production)", runDev},
		{"migrate", "apply database migrations to DATABASE_URL and exit", runMigrate},
		{"rotate-keys", "re-seal every stored secret under the primary ENCRYPTION_KEYS key, online", runRotateKeys},
		{"keygen", "print fresh base64 32-byte keys for ENCRYPTION_KEY and STATE_KEY, and the gateway's STATE_PUBLIC_KEYS", runKeygen},
		{"state-public-keys", "print STATE_PUBLIC_KEYS for the gateway from the broker's STATE_KEY or STATE_KEYS", runStatePublicKeys},
		{"providers", "add, list, show or remove providers at a running broker", runProviders},
		{"connections", "list, show or delete connections at a running broker", runConnections},
		{"webhooks", "add, list, rotate, enable or remove webhook endpoints at a running broker", runWebhooks},
		{"token", "print a redacted summary of a connection's current token", runToken},
		{"connect", "connect a user's account through the gateway and wait for consent", runConnect},
		{"version", "print the version", runVersion},
	}
}

// Run executes the command line and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) int {
	ios := ioSet{stdout, stderr}
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], ios, config.FromList(environ))
			if err == nil || err == flag.ErrHelp {
				return 0
			}
			fmt.Fprintf(stderr, "dromos %s: %s\n", c.name, printable(singlePrefix(err)))
			return 1
		}
	}
	fmt.Fprintf(stderr, "dromos: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// singlePrefix is err's message without the "dromos: " the SDK puts on its
// own errors: the command line already starts with "dromos COMMAND: ", and
// "dromos connect: dromos: 404 …" reads like two programs failing.
func singlePrefix(err error) string {
	msg := strings.TrimPrefix(err.Error(), sdkPrefix)
	return strings.ReplaceAll(msg, ": "+sdkPrefix, ": ")
}

const sdkPrefix = "dromos: "

func usage(w io.Writer) {
	fmt.Fprintln(w, "Dromos: the OAuth connection broker for AI agents.")
	fmt.Fprintln(w, "\nUsage: dromos COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'dromos COMMAND --help' for a command's flags and environment variables.")
}

// newFlags makes a flag set whose --help prints the summary, the flags and
// the environment variables the command reads.
func newFlags(name, summary, envHelp string, ios ioSet) *flag.FlagSet {
	fs := flag.NewFlagSet("dromos "+name, flag.ContinueOnError)
	errOut := &flagErrors{w: ios.err}
	fs.SetOutput(errOut)
	fs.Usage = func() {
		// The flag package prints usage both for -h and after reporting a
		// bad flag; only asked-for help goes to stdout, so that a mistyped
		// flag leaves nothing on the stdout a --json script reads.
		w := ios.out
		if errOut.reported {
			w, errOut.reported = ios.err, false
		}
		fmt.Fprintf(w, "Usage: dromos %s [flags]\n\n%s\n", name, summary)
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(w, "\nFlags:")
			fs.SetOutput(w)
			fs.PrintDefaults()
			fs.SetOutput(errOut)
		}
		if envHelp != "" {
			fmt.Fprintf(w, "\nEnvironment:\n%s", envHelp)
		}
	}
	return fs
}

// flagErrors is a flag set's error output: it notes that the flag package
// has reported a parse error, which it always does just before calling
// Usage (while -h calls Usage with nothing reported).
type flagErrors struct {
	w        io.Writer
	reported bool
}

func (e *flagErrors) Write(p []byte) (int, error) {
	e.reported = true
	return e.w.Write(p)
}

func runKeygen(_ context.Context, args []string, ios ioSet, _ config.Env) error {
	fs := newFlags("keygen", "Prints fresh random keys (base64 of 32 bytes) ready to paste into the environment.", "", ios)
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, name := range []string{"ENCRYPTION_KEY", "STATE_KEY"} {
		k, err := config.NewKey(rand.Read)
		if err != nil {
			return err
		}
		fmt.Fprintf(ios.out, "%s=%s\n", name, k)
		if name == "STATE_KEY" {
			keys, err := config.StateKeys(config.Env{"STATE_KEY": k})
			if err != nil {
				return err
			}
			if err := printStatePublicKeys(ios, keys); err != nil {
				return err
			}
		}
	}
	return nil
}

// runStatePublicKeys prints the gateway's STATE_PUBLIC_KEYS for the
// broker's state keys: public, safe to hand to the gateway.
func runStatePublicKeys(_ context.Context, args []string, ios ioSet, env config.Env) error {
	fs := newFlags("state-public-keys", "Prints STATE_PUBLIC_KEYS, the public keys the gateway verifies states with, derived from STATE_KEYS or STATE_KEY in the environment.", "", ios)
	if err := fs.Parse(args); err != nil {
		return err
	}
	keys, err := config.StateKeys(env)
	if err != nil {
		return err
	}
	return printStatePublicKeys(ios, keys)
}

func printStatePublicKeys(ios ioSet, keys []state.Key) error {
	pubs, err := state.PublicKeys(keys)
	if err != nil {
		return err
	}
	fmt.Fprintf(ios.out, "STATE_PUBLIC_KEYS=%s\n", state.FormatPublicKeys(pubs))
	return nil
}

func runVersion(_ context.Context, args []string, ios ioSet, _ config.Env) error {
	fs := newFlags("version", "Prints the dromos version.", "", ios)
	if err := fs.Parse(args); err != nil {
		return err
	}
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v = "dev-" + s.Value[:12]
			}
		}
	}
	fmt.Fprintf(ios.out, "dromos %s\n", v)
	return nil
}

func runMigrate(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	fs := newFlags("migrate", "Applies the embedded schema migrations to DATABASE_URL and exits. Brokers also migrate at start.",
		"  DATABASE_URL  postgres://… or sqlite:PATH (default sqlite:dromos.db)\n", ios)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := database.Migrate(ctx, config.DatabaseURL(env)); err != nil {
		return err
	}
	fmt.Fprintln(ios.out, "migrations applied")
	return nil
}
