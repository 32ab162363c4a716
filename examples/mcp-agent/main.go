// Command mcp-agent connects to a remote MCP server through Dromos and
// calls one of its tools. Dromos does the server's OAuth (discovery,
// client registration, PKCE, resource indicators, refresh); the agent
// keeps only a connection id and uses the official MCP Go SDK with the
// Dromos SDK's HTTP client.
//
// Against `dromos dev` (gateway on 8090):
//
//	go run ./examples/mcp-agent -server https://mcp.example.com/mcp -tool search
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dromos-dev/dromos/sdk"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mcp-agent:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("mcp-agent", flag.ContinueOnError)
	gateway := fs.String("gateway", "http://localhost:8090", "Dromos gateway URL")
	apiKey := fs.String("api-key", os.Getenv("DROMOS_API_KEY"), "the agent's gateway key (default $DROMOS_API_KEY)")
	server := fs.String("server", "", "MCP server URL (required)")
	user := fs.String("user", "alice", "your id for the user")
	returnURL := fs.String("return-url", "http://localhost:8080/dev/return", "where the browser lands after consent")
	connID := fs.String("connection", "", "reuse this connection id instead of starting a new one")
	tool := fs.String("tool", "", "tool to call (default: the first one listed)")
	toolArgs := fs.String("args", "{}", "tool arguments as a JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *server == "" {
		return fmt.Errorf("-server is required")
	}
	var arguments map[string]any
	if err := json.Unmarshal([]byte(*toolArgs), &arguments); err != nil {
		return fmt.Errorf("-args: %w", err)
	}
	var opts []sdk.Option
	if *apiKey != "" {
		opts = append(opts, sdk.WithAPIKey(*apiKey))
	}
	dromos, err := sdk.New(*gateway, opts...)
	if err != nil {
		return err
	}
	id := *connID
	if id == "" {
		conn, err := dromos.RequestConnection(ctx, sdk.RequestConnectionInput{UserID: *user, MCPServerURL: *server, ReturnURL: *returnURL})
		if err != nil {
			return err
		}
		id = conn.ConnectionID
		fmt.Fprintf(out, "Open this URL to connect %s:\n\n  %s\n\nconnection_id: %s\n", *server, conn.AuthURL, id)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		if err := dromos.WaitForActive(wctx, id, sdk.WaitOptions{}); err != nil {
			return err
		}
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "dromos-mcp-agent", Version: "1"}, nil)
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: *server, HTTPClient: dromos.MCPHTTPClient(ctx, id)}, nil)
	if err != nil {
		return explain(err)
	}
	defer session.Close()
	tools, err := session.ListTools(ctx, nil)
	if err != nil {
		return explain(err)
	}
	name := *tool
	if name == "" {
		if len(tools.Tools) == 0 {
			return fmt.Errorf("the server lists no tools")
		}
		name = tools.Tools[0].Name
	}
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: arguments})
	if err != nil {
		return explain(err)
	}
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			fmt.Fprintln(out, t.Text)
		}
	}
	return nil
}

// explain names the scopes to reconnect with when the server refused the
// connection's token for lack of scope.
func explain(err error) error {
	if e, ok := sdk.AsInsufficientScope(err); ok {
		return fmt.Errorf("the server needs more scopes (%v): reconnect with them: %w", e.Scopes, err)
	}
	return err
}
