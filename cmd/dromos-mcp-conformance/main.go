// Command dromos-mcp-conformance is the client the MCP conformance suite
// (@modelcontextprotocol/conformance) runs for its client auth scenarios.
// It has no OAuth logic of its own: it asks a running Dromos for a
// connection to the suite's MCP server, completes the consent by following
// the authUrl with a cookie-keeping HTTP client (the suite's authorization
// server approves without a page), then initializes an MCP session with
// the official MCP Go SDK over the Dromos SDK's HTTP client and calls the
// server's tool.
//
// The suite passes the MCP server URL as the last argument, the scenario
// in MCP_CONFORMANCE_SCENARIO and its context (pre-registered credentials)
// as JSON in MCP_CONFORMANCE_CONTEXT. DROMOS_GATEWAY_URL and
// DROMOS_BROKER_URL name the running gateway and broker; DROMOS_API_KEY and
// DROMOS_BROKER_API_KEY are sent when set. The credentials of the context
// are handed to the broker as an operator's pre-registration
// (POST /mcp/clients), which is how an operator gives Dromos a client.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dromos-dev/dromos/sdk"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if err := run(ctx, os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "dromos-mcp-conformance:", err)
		os.Exit(1)
	}
}

// scenarioContext is the suite's context for scenarios with
// pre-registered clients.
type scenarioContext struct {
	ClientID         string `json:"client_id"`
	ClientSecret     string `json:"client_secret"`
	PrivateKeyPEM    string `json:"private_key_pem"`
	SigningAlgorithm string `json:"signing_algorithm"`
}

const returnURL = "http://127.0.0.1:9/mcp-conformance-done"

func run(ctx context.Context, args []string, getenv func(string) string) error {
	if len(args) == 0 {
		return errors.New("usage: dromos-mcp-conformance [flags] SERVER_URL")
	}
	serverURL := args[len(args)-1]
	gatewayURL, brokerURL := getenv("DROMOS_GATEWAY_URL"), getenv("DROMOS_BROKER_URL")
	if gatewayURL == "" || brokerURL == "" {
		return errors.New("DROMOS_GATEWAY_URL and DROMOS_BROKER_URL are required")
	}
	scenario := getenv("MCP_CONFORMANCE_SCENARIO")
	var sc scenarioContext
	if raw := getenv("MCP_CONFORMANCE_CONTEXT"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &sc); err != nil {
			return fmt.Errorf("MCP_CONFORMANCE_CONTEXT: %w", err)
		}
	}
	if sc.ClientID != "" {
		if err := preregister(ctx, brokerURL, getenv("DROMOS_BROKER_API_KEY"), serverURL, sc); err != nil {
			return err
		}
	}
	var opts []sdk.Option
	if k := getenv("DROMOS_API_KEY"); k != "" {
		opts = append(opts, sdk.WithAPIKey(k))
	}
	dromos, err := sdk.New(gatewayURL, opts...)
	if err != nil {
		return err
	}
	in := sdk.RequestConnectionInput{UserID: "conformance", MCPServerURL: serverURL, ReturnURL: returnURL}
	if strings.HasPrefix(scenario, "auth/client-credentials") {
		in.Grant = "client_credentials"
	}
	conn, err := dromos.RequestConnection(ctx, in)
	if err != nil {
		return fmt.Errorf("request-connection: %w", err)
	}
	if conn.AuthURL != "" {
		if err := consent(ctx, conn.AuthURL); err != nil {
			return err
		}
	}
	if err := dromos.WaitForActive(ctx, conn.ConnectionID, sdk.WaitOptions{Interval: 100 * time.Millisecond}); err != nil {
		return fmt.Errorf("waiting for the connection: %w", err)
	}
	// A server that needs more scopes answers insufficient_scope: step up
	// (the same connection, the scopes it asks for added), at most twice.
	for attempt := 0; ; attempt++ {
		err := useServer(ctx, dromos, conn.ConnectionID, serverURL)
		e, ok := sdk.AsInsufficientScope(err)
		if !ok || attempt == maxStepUps {
			return err
		}
		up, err := dromos.AddScopes(ctx, sdk.AddScopesInput{ConnectionID: conn.ConnectionID, UserID: in.UserID,
			MCPServerURL: serverURL, Scopes: e.Scopes, ReturnURL: returnURL})
		if err != nil {
			return fmt.Errorf("step-up for %q: %w", e.Scopes, err)
		}
		if err := consent(ctx, up.AuthURL); err != nil {
			return err
		}
		if err := dromos.WaitForStepUp(ctx, conn.ConnectionID, sdk.WaitOptions{Interval: 100 * time.Millisecond}); err != nil {
			return fmt.Errorf("waiting for the step-up: %w", err)
		}
	}
}

// maxStepUps bounds step-ups per run, so a server that keeps refusing
// cannot loop the program (the broker bounds them too).
const maxStepUps = 2

// preregister gives the broker the suite's client as an operator would.
func preregister(ctx context.Context, brokerURL, key, serverURL string, sc scenarioContext) error {
	body := map[string]string{"mcp_server_url": serverURL, "client_id": sc.ClientID}
	switch {
	case sc.PrivateKeyPEM != "":
		body["token_endpoint_auth_method"] = "private_key_jwt"
		body["private_key_pem"] = sc.PrivateKeyPEM
	case sc.ClientSecret != "":
		body["token_endpoint_auth_method"] = "client_secret_basic"
		body["client_secret"] = sc.ClientSecret
	default:
		body["token_endpoint_auth_method"] = "none"
	}
	raw, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(brokerURL, "/")+"/mcp/clients", bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("pre-registering the client: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("pre-registering the client: HTTP %d: %s", resp.StatusCode, b)
	}
	return nil
}

// consent plays the user's browser: it opens the authUrl and follows the
// redirects (broker start page, authorization server, broker callback)
// with the cookies they set, until the broker sends it to the return URL.
func consent(ctx context.Context, authURL string) error {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	var landed string
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), returnURL) {
				landed = req.URL.String()
				return http.ErrUseLastResponse
			}
			if len(via) > 10 {
				return errors.New("too many redirects")
			}
			return nil
		}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return err
	}
	resp, err := browser.Do(req)
	if err != nil {
		return fmt.Errorf("following the authUrl: %w", err)
	}
	resp.Body.Close()
	if landed == "" {
		return fmt.Errorf("the consent did not come back to the return URL (last status %d)", resp.StatusCode)
	}
	if !strings.Contains(landed, "status=success") {
		return fmt.Errorf("the consent failed: %s", landed)
	}
	return nil
}

// useServer initializes an MCP session over Dromos' HTTP client, lists
// the tools and calls the first one.
func useServer(ctx context.Context, dromos *sdk.Client, connID, serverURL string) error {
	client := mcp.NewClient(&mcp.Implementation{Name: "dromos-mcp-conformance", Version: "1"}, nil)
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: serverURL, HTTPClient: dromos.MCPHTTPClient(ctx, connID), DisableStandaloneSSE: true, MaxRetries: -1,
	}, nil)
	if err != nil {
		return describe("initialize", err)
	}
	defer session.Close()
	tools, err := session.ListTools(ctx, nil)
	if err != nil {
		return describe("tools/list", err)
	}
	if len(tools.Tools) == 0 {
		return nil
	}
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: tools.Tools[0].Name, Arguments: map[string]any{}})
	if err != nil {
		return describe("tools/call", err)
	}
	if res.IsError {
		return fmt.Errorf("tools/call %s answered an error", tools.Tools[0].Name)
	}
	return nil
}

func describe(op string, err error) error {
	if e, ok := sdk.AsInsufficientScope(err); ok {
		return fmt.Errorf("%s: the server needs scopes %q: %w", op, e.Scopes, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
