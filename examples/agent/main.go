// Command agent is the smallest useful Dromos agent: it asks the gateway
// for a connection, prints the consent URL, waits for the user to approve,
// then calls the provider's userinfo endpoint as that user.
//
// Against `dromos dev` (gateway on 8090, broker on 8080):
//
//	go run ./examples/agent -gateway http://localhost:8090 \
//	    -userinfo http://localhost:8080/demo/userinfo
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/dromos-dev/dromos/sdk"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	gateway := fs.String("gateway", "http://localhost:8090", "Dromos gateway URL")
	apiKey := fs.String("api-key", os.Getenv("DROMOS_API_KEY"), "the agent's gateway key (default $DROMOS_API_KEY)")
	providerName := fs.String("provider", "demo", "provider to connect")
	user := fs.String("user", "alice", "your id for the user")
	scopes := fs.String("scopes", "openid email", "space-separated scopes")
	returnURL := fs.String("return-url", "http://localhost:8080/dev/return", "where the browser lands after consent")
	userinfo := fs.String("userinfo", "http://localhost:8080/demo/userinfo", "provider API URL to call as the user")
	if err := fs.Parse(args); err != nil {
		return err
	}

	client, err := sdk.New(*gateway, sdk.WithAPIKey(*apiKey))
	if err != nil {
		return err
	}
	conn, err := client.RequestConnection(ctx, sdk.RequestConnectionInput{
		UserID: *user, ProviderName: *providerName, Scopes: strings.Fields(*scopes), ReturnURL: *returnURL,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Open this URL to connect %s:\n\n  %s\n\nWaiting for consent…\n", *providerName, conn.AuthURL)

	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := client.WaitForActive(waitCtx, conn.ConnectionID, sdk.WaitOptions{}); err != nil {
		return err
	}
	fmt.Fprintf(out, "Connected: %s\n", conn.ConnectionID)

	resp, err := client.HTTPClient(ctx, conn.ConnectionID).Get(*userinfo)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("userinfo answered %s", resp.Status)
	}
	_, err = io.Copy(out, resp.Body)
	return err
}
