package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dromos-dev/dromos/internal/config"
)

// Environment the operator commands read (through the Env they are given).
const (
	envBrokerURL     = "DROMOS_BROKER_URL"
	envAPIKey        = "DROMOS_API_KEY"
	envGatewayURL    = "DROMOS_GATEWAY_URL"
	envGatewayAPIKey = "DROMOS_GATEWAY_API_KEY"

	defaultBrokerURL  = "http://127.0.0.1:8080"
	defaultGatewayURL = "http://127.0.0.1:8090"
)

const brokerEnvHelp = "  " + envBrokerURL + "  broker URL when --broker is not given (default " + defaultBrokerURL + ")\n" +
	"  " + envAPIKey + "     broker API key when --api-key is not given\n"

// opsFlags are the flags every broker-facing operator command has.
type opsFlags struct {
	broker, apiKey string
	json           bool
}

func (o *opsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.broker, "broker", "", "broker URL (default $"+envBrokerURL+" or "+defaultBrokerURL+")")
	// No default is shown: --help must not print a key taken from the
	// environment.
	fs.StringVar(&o.apiKey, "api-key", "", "broker API key (default $"+envAPIKey+")")
	fs.BoolVar(&o.json, "json", false, "print JSON instead of a table")
}

// client resolves the flags against the environment.
func (o *opsFlags) client(env config.Env) (*brokerClient, error) {
	base := firstNonEmpty(o.broker, env[envBrokerURL], defaultBrokerURL)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--broker must be an http(s) URL, got %q", base)
	}
	return &brokerClient{
		base: strings.TrimSuffix(base, "/"), key: firstNonEmpty(o.apiKey, env[envAPIKey]),
		hc: &http.Client{Timeout: 30 * time.Second},
	}, nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// brokerClient calls the broker's internal API for operators.
type brokerClient struct {
	base, key string
	hc        *http.Client
}

// brokerError is an error answer of the broker.
type brokerError struct {
	Status        int
	Code, Message string
}

func (e *brokerError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("broker answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("broker answered %d %s: %s", e.Status, e.Code, e.Message)
}

func isNotFound(err error) bool {
	var be *brokerError
	return errors.As(err, &be) && be.Status == http.StatusNotFound
}

// do sends body (when non-nil) as JSON and decodes a 2xx answer into out
// (when non-nil; a *json.RawMessage keeps the answer as it came).
func (c *brokerClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("X-API-Key", c.key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the broker at %s (set --broker or %s): %w", c.base, envBrokerURL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("reading the broker's answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		be := &brokerError{Status: resp.StatusCode}
		var env struct{ Code, Message string }
		if json.Unmarshal(raw, &env) == nil {
			be.Code, be.Message = env.Code, env.Message
		}
		return be
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("the broker's answer to %s %s is not the JSON expected: %w", method, path, err)
	}
	return nil
}

// unwrapURLError drops url.Error's repetition of method and URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// parseArgs parses flags that may come before or after positional
// arguments ("show NAME --json") and checks the positional count.
func parseArgs(fs *flag.FlagSet, args []string, want int, what string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	if len(pos) != want {
		if want == 0 {
			return nil, fmt.Errorf("unexpected argument %q", pos[0])
		}
		return nil, fmt.Errorf("expected %s (see --help)", what)
	}
	return pos, nil
}

// subcommand is one verb of a command group such as "providers".
type subcommand struct {
	name, summary string
	run           func(ctx context.Context, args []string, ios ioSet, env config.Env) error
}

// runGroup dispatches to a verb, or prints the group's verbs.
func runGroup(ctx context.Context, group, summary string, subs []subcommand, args []string, ios ioSet, env config.Env) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		// Asked-for help goes to stdout; usage after a missing command is
		// part of the error.
		w := ios.out
		if len(args) == 0 {
			w = ios.err
		}
		fmt.Fprintf(w, "Usage: dromos %s COMMAND [flags]\n\n%s\n\nCommands:\n", group, summary)
		for _, s := range subs {
			fmt.Fprintf(w, "  %-8s %s\n", s.name, s.summary)
		}
		fmt.Fprintf(w, "\nRun 'dromos %s COMMAND --help' for its flags.\n", group)
		if len(args) == 0 {
			return errors.New("a command is required")
		}
		return flag.ErrHelp
	}
	for _, s := range subs {
		if s.name == args[0] {
			return s.run(ctx, args[1:], ios, env)
		}
	}
	return fmt.Errorf("unknown command %q (see 'dromos %s --help')", args[0], group)
}

// printJSON writes v indented, as scripts and jq like it.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns; the first row is the header. Every cell
// goes through printable: table data comes from the broker, whatever wrote
// it there.
func table(w io.Writer, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = printable(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// fields writes "KEY  value" lines for one object, skipping empty values.
func fields(w io.Writer, kv [][2]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, p := range kv {
		if p[1] != "" {
			fmt.Fprintf(tw, "%s\t%s\n", printable(p[0]), printable(p[1]))
		}
	}
	return tw.Flush()
}

// orDash keeps table cells from collapsing.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// stamp formats an instant for tables; the zero time is empty.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// isTerminal reports whether w is a terminal, for progress output that
// would only clutter a pipe or a log file.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// redact shows enough of a token to tell two apart and too little to use
// it: at most its first 6 characters, never more than half of it.
func redact(tok string) string {
	if tok == "" {
		return ""
	}
	n := min(6, len(tok)/2)
	return tok[:n] + "…"
}
