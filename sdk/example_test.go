package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"time"

	"golang.org/x/oauth2"

	"github.com/dromos-dev/dromos/sdk"
)

func ExampleNew() {
	client, err := sdk.New("http://localhost:8090",
		sdk.WithAPIKey(os.Getenv("DROMOS_API_KEY")),
		sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 5, BaseDelay: 100 * time.Millisecond, MaxDelay: 3 * time.Second}),
		sdk.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))),
	)
	if err != nil {
		log.Fatal(err)
	}
	conn, err := client.RequestConnection(context.Background(), sdk.RequestConnectionInput{
		UserID:       "u-42",
		ProviderName: "google",
		Scopes:       []string{"openid", "email"},
		ReturnURL:    "https://app.example.com/connected",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("Open this page to connect your account:", conn.AuthURL)
	fmt.Println("keep:", conn.ConnectionID)
}

func ExampleClient_WaitForActive() {
	client, err := sdk.New("http://localhost:8090")
	if err != nil {
		log.Fatal(err)
	}
	// Consent takes a person a while; a pending connection expires after
	// ten minutes anyway.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	err = client.WaitForActive(ctx, "0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b", sdk.WaitOptions{
		Progress: func(s sdk.Status) { log.Printf("connection is %s", s.Status) },
	})
	var failed *sdk.FailedError
	switch {
	case errors.As(err, &failed):
		log.Fatalf("the user did not connect: %s %s", failed.Detail, failed.Reason)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println("connected")
}

func ExampleClient_TokenSource() {
	client, err := sdk.New("http://localhost:8090")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	// Any code written for golang.org/x/oauth2 takes the source as it is.
	httpClient := oauth2.NewClient(ctx, client.TokenSource(ctx, "0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b"))
	resp, err := httpClient.Get("https://openidconnect.googleapis.com/v1/userinfo")
	if errors.Is(err, sdk.ErrReauthRequired) {
		log.Fatal("the user must connect again")
	}
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(os.Stdout, resp.Body)
}

func ExampleClient_HTTPClient() {
	client, err := sdk.New("http://localhost:8090", sdk.WithAPIKey(os.Getenv("DROMOS_API_KEY")))
	if err != nil {
		log.Fatal(err)
	}
	// A 401 from the API makes the client refresh through the gateway and
	// try once more.
	api := client.HTTPClient(context.Background(), "0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b")
	api.Timeout = 30 * time.Second
	resp, err := api.Get("https://graph.microsoft.com/v1.0/me")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(os.Stdout, resp.Body)
}

func ExampleClient_AddScopes() {
	client, err := sdk.New("http://localhost:8090", sdk.WithAPIKey(os.Getenv("DROMOS_API_KEY")))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	id := "0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b" // an active connection
	// The provider answered 403 insufficient_scope: ask the user for more.
	more, err := client.AddScopes(ctx, sdk.AddScopesInput{
		ConnectionID: id,
		UserID:       "u-42",
		ProviderName: "google",
		Scopes:       []string{"https://www.googleapis.com/auth/drive.file"},
		ReturnURL:    "https://app.example.com/connected",
	})
	if errors.Is(err, sdk.ErrStepUpLimited) {
		log.Fatal("asked for more scopes too often; try later")
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("Open this page to allow more access:", more.AuthURL)
	// GetToken keeps returning the current token meanwhile.
	var failed *sdk.StepUpFailedError
	switch err := client.WaitForStepUp(ctx, id, sdk.WaitOptions{}); {
	case errors.As(err, &failed):
		fmt.Println("the connection keeps its scopes:", failed.Reason)
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("the connection now has:", more.Scopes)
	}
}
