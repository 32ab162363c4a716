package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/dromos-dev/dromos/internal/config"
	"github.com/dromos-dev/dromos/sdk"
)

const connectEnvHelp = "  " + envGatewayURL + "      gateway URL when --gateway is not given (default " + defaultGatewayURL + ")\n" +
	"  " + envGatewayAPIKey + "  the gateway key when --gateway-key is not given\n" +
	"  " + envBrokerURL + "       broker URL for the default --return-url and alias look-ups (default " + defaultBrokerURL + ")\n" +
	"  " + envAPIKey + "          broker API key for alias look-ups when --api-key is not given\n"

type connectFlags struct {
	gateway, gatewayKey       string
	broker, apiKey            string
	provider, user, returnURL string
	mcp                       string
	keyEnv, basicUser         string
	keyForm                   bool
	scopes                    listFlag
	timeout                   time.Duration
	json, reveal              bool
}

func runConnect(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	var f connectFlags
	fs := newFlags("connect", "Connects a user's account through the gateway, as an agent would: prints the consent URL\n"+
		"(for a device-code provider, the verification page and the user code),\n"+
		"waits until the user has approved (a progress line on a terminal, quiet otherwise), then prints\n"+
		"the connection id and a summary of its token.", connectEnvHelp, ios)
	fs.StringVar(&f.gateway, "gateway", "", "gateway URL (default $"+envGatewayURL+" or "+defaultGatewayURL+")")
	fs.StringVar(&f.gatewayKey, "gateway-key", "", "the gateway key to act with (default $"+envGatewayAPIKey+")")
	fs.StringVar(&f.broker, "broker", "", "broker URL, for the default --return-url and to find an alias's default scopes")
	// No default is shown: --help must not print a key taken from the
	// environment.
	fs.StringVar(&f.apiKey, "api-key", "", "broker API key, to find an alias's default scopes (default $"+envAPIKey+")")
	fs.StringVar(&f.provider, "provider", "", "provider name or alias (required unless --mcp)")
	fs.StringVar(&f.mcp, "mcp", "", "connect to this remote MCP server URL instead of a provider (docs/MCP.md)")
	fs.StringVar(&f.user, "user", "", "the user id to connect (required)")
	fs.Var(&f.scopes, "scopes", "scopes to ask for, comma- or space-separated (default: the provider's)")
	fs.StringVar(&f.returnURL, "return-url", "", "where the browser lands after consent (default BROKER/dev/return, the page dromos dev serves)")
	// The key is read from the environment, never from a flag: flags end
	// up in shell history and process listings.
	fs.StringVar(&f.keyEnv, "key-env", "", "for an api_key or basic provider: the environment variable holding the API key (the password with --basic-user)")
	fs.StringVar(&f.basicUser, "basic-user", "", "for a basic provider: the user name (the password comes from --key-env)")
	fs.BoolVar(&f.keyForm, "key-form", false, "for an api_key or basic provider: let the user type the credential into Dromos's hosted form")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "how long to wait for the user")
	fs.BoolVar(&f.json, "json", false, "print JSON instead of text (the consent URL then goes to stderr)")
	fs.BoolVar(&f.reveal, "reveal", false, "print the whole access and id tokens")
	if _, err := parseArgs(fs, args, 0, ""); err != nil {
		return err
	}
	if (f.provider == "") == (f.mcp == "") || f.user == "" {
		return errors.New("--user and one of --provider and --mcp are required")
	}
	if f.timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	creds, err := connectCredentials(f, env)
	if err != nil {
		return err
	}
	client, err := sdk.New(firstNonEmpty(f.gateway, env[envGatewayURL], defaultGatewayURL),
		sdk.WithAPIKey(firstNonEmpty(f.gatewayKey, env[envGatewayAPIKey])))
	if err != nil {
		return err
	}
	if len(f.scopes) == 0 && f.mcp == "" && creds == nil {
		broker := func() (*brokerClient, error) { return (&opsFlags{broker: f.broker, apiKey: f.apiKey}).client(env) }
		if f.scopes, err = providerScopes(ctx, client, broker, f.provider); err != nil {
			return err
		}
	}
	returnURL := firstNonEmpty(f.returnURL, strings.TrimSuffix(firstNonEmpty(f.broker, env[envBrokerURL], defaultBrokerURL), "/")+"/dev/return")

	conn, err := client.RequestConnection(ctx, sdk.RequestConnectionInput{
		UserID: f.user, ProviderName: f.provider, Scopes: f.scopes, ReturnURL: returnURL, MCPServerURL: f.mcp,
		Credentials: creds,
	})
	if err != nil {
		return err
	}
	switch conn.Status {
	case sdk.StatusFailed:
		return fmt.Errorf("the provider refused the credential (connection %s is failed: %s)", conn.ConnectionID, printable(conn.StatusReason))
	case sdk.StatusActive:
		return printConnected(ctx, client, conn, f, ios)
	}
	urlOut := ios.out
	if f.json {
		urlOut = ios.err
	}
	if d := conn.Device; d != nil {
		// A device flow: the person opens the page on any device and
		// types the code; the broker polls the provider meanwhile.
		fmt.Fprintf(urlOut, "To connect %s for user %s, open this page on any device:\n\n  %s\n\nand enter the code:\n\n  %s\n\n",
			printable(f.provider), printable(f.user), printable(d.VerificationURI), printable(d.UserCode))
		if d.VerificationURIComplete != "" {
			fmt.Fprintf(urlOut, "(or open %s, which carries the code)\n\n", printable(d.VerificationURIComplete))
		}
		if d.ExpiresIn > 0 {
			fmt.Fprintf(urlOut, "The code expires in %s.\n\n", d.ExpiresIn)
		}
	} else {
		fmt.Fprintf(urlOut, "Open this URL in a browser to connect %s for user %s:\n\n  %s\n\n",
			printable(firstNonEmpty(f.provider, f.mcp)), printable(f.user), printable(conn.AuthURL))
	}

	waitCtx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	err = client.WaitForActive(waitCtx, conn.ConnectionID, sdk.WaitOptions{Progress: progressLine(ios.err, time.Now())})
	if isTerminal(ios.err) {
		fmt.Fprint(ios.err, "\r\033[K")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("the user did not finish consent within %s (connection %s stays pending until it expires)", f.timeout, conn.ConnectionID)
	}
	if err != nil {
		return err
	}
	return printConnected(ctx, client, conn, f, ios)
}

// printConnected prints an active connection's id and token summary.
func printConnected(ctx context.Context, client *sdk.Client, conn *sdk.Connection, f connectFlags, ios ioSet) error {
	tok, err := client.GetToken(ctx, conn.ConnectionID)
	if err != nil {
		return fmt.Errorf("connection %s is active but its token could not be read: %w", conn.ConnectionID, err)
	}
	sum := newTokenSummary(tok.AccessToken, tok.TokenType, tok.Scope, tok.IDToken, tok.Provider, tok.ExpiresAt, time.Now(), f.reveal)
	if f.json {
		return printJSON(ios.out, map[string]any{"connection_id": conn.ConnectionID, "auth_url": conn.AuthURL, "status": sdk.StatusActive, "token": sum})
	}
	fmt.Fprintf(ios.out, "Connected.\n\n")
	return sum.write(ios.out, false, [2]string{"CONNECTION ID", conn.ConnectionID})
}

// providerScopes are a provider's default scopes. The gateway lists them
// by name only; an alias is looked up at the broker, which resolves
// aliases. (The gateway refuses a request without scopes, so connect cannot
// leave the choice to the broker.)
func providerScopes(ctx context.Context, c *sdk.Client, broker func() (*brokerClient, error), name string) ([]string, error) {
	ps, err := c.ListProviders(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if strings.EqualFold(p.Name, name) && len(p.Scopes) > 0 {
			return slices.Clone(p.Scopes), nil
		}
	}
	bc, err := broker()
	if err == nil {
		var p providerInfo
		if _, p, err = providerByName(ctx, bc, name); err == nil {
			if len(p.Scopes) > 0 {
				return slices.Clone(p.Scopes), nil
			}
			err = errors.New("it has none")
		}
	}
	return nil, fmt.Errorf("no default scopes known for provider %q (the gateway lists no such name; at the broker: %v); give --scopes", name, err)
}

// progressLine rewrites one status line on a terminal while the user
// consents; elsewhere it prints nothing.
func progressLine(w io.Writer, start time.Time) func(sdk.Status) {
	if !isTerminal(w) {
		return nil
	}
	return func(s sdk.Status) {
		state := s.Status
		if s.Detail != "" {
			state += " (" + s.Detail + ")"
		}
		fmt.Fprintf(w, "\r\033[Kwaiting for consent… %s, %s", time.Since(start).Round(time.Second), printable(state))
	}
}

// connectCredentials is what connect sends as credentials: nil for a
// consent, the key (or user and password) from the environment, or an
// empty set that asks for the hosted form.
func connectCredentials(f connectFlags, env config.Env) (*sdk.Credentials, error) {
	switch {
	case f.keyForm && (f.keyEnv != "" || f.basicUser != ""):
		return nil, errors.New("--key-form asks the user for the credential: give it without --key-env and --basic-user")
	case f.keyForm:
		return &sdk.Credentials{}, nil
	case f.basicUser != "" && f.keyEnv == "":
		return nil, errors.New("--basic-user needs --key-env, the environment variable holding the password")
	case f.keyEnv == "":
		return nil, nil
	case f.mcp != "":
		return nil, errors.New("--key-env and --key-form are for api_key and basic providers, not --mcp")
	}
	secret := env[f.keyEnv]
	if secret == "" {
		return nil, fmt.Errorf("--key-env: the environment variable %s is empty or not set", printable(f.keyEnv))
	}
	if f.basicUser != "" {
		return &sdk.Credentials{Username: f.basicUser, Password: secret}, nil
	}
	return &sdk.Credentials{APIKey: secret}, nil
}
