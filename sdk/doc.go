// Package sdk is the Go client agents use to talk to a Dromos gateway.
//
// Dromos keeps an agent's OAuth connections for it: the client secrets,
// the refresh tokens and every provider quirk stay in the broker. The agent
// holds only a connection id and asks for a valid access token whenever it
// needs one. This package wraps the gateway's v1 REST API (see
// docs/GATEWAY.md and api/openapi.yaml) and plugs the result into
// golang.org/x/oauth2 and net/http.
//
// # Connecting a user
//
// Make one Client per gateway and share it; it is safe for concurrent use:
//
//	client, err := sdk.New("https://dromos-gateway.internal:8090", sdk.WithAPIKey(key))
//
// Ask for a connection, send the user to its AuthURL, keep its
// ConnectionID, and wait for the user to finish consent:
//
//	conn, err := client.RequestConnection(ctx, sdk.RequestConnectionInput{
//		UserID: "u-42", ProviderName: "google", Scopes: []string{"openid", "email"},
//		ReturnURL: "https://app.example.com/connected",
//	})
//	// show conn.AuthURL to the user, store conn.ConnectionID
//	err = client.WaitForActive(ctx, conn.ConnectionID, sdk.WaitOptions{})
//
// WaitForActive polls CheckConnection with a growing pause until the
// connection is active, failed (a *FailedError that errors.Is ErrFailed,
// carrying the reason), or ctx ends. Agents that receive the browser's
// redirect on their return URL (status=success&connection_id=…) can call
// CheckConnection once instead.
//
// # Calling the provider's API
//
// Three lines give an *http.Client that acts as the user:
//
//	client, _ := sdk.New(gatewayURL, sdk.WithAPIKey(key))
//	api := client.HTTPClient(ctx, connectionID)
//	resp, err := api.Get("https://openidconnect.googleapis.com/v1/userinfo")
//
// HTTPClient's transport adds "Authorization: Bearer …" with a cached
// token, only for the origin of the request the caller made: redirects to
// another origin are followed without it. When the provider answers 401 (a
// token revoked or expired early), it forces one refresh through the
// gateway and sends the request once more; a second 401 is handed back to
// the caller, as are 401s within 30 seconds of a forced refresh, and
// requests whose body cannot be replayed (no GetBody) are not repeated.
//
// For code written against golang.org/x/oauth2, TokenSource is an
// oauth2.TokenSource:
//
//	httpClient := oauth2.NewClient(ctx, client.TokenSource(ctx, connectionID))
//
// Both cache a token until 30 s before it expires (one minute when the
// provider gave no expiry) and fetch a new one from the gateway after
// that; the broker refreshes at the provider as needed. Concurrent callers
// share one fetch. GetToken and Refresh are the direct calls, for agents
// that pass tokens on to other code; the id token, scope and provider
// extras are on Token.
//
// # Errors
//
// An error the gateway answered is an *APIError with the HTTP status and
// the envelope's code and message. Test for the common cases with
// errors.Is:
//
//   - ErrPending: consent not finished yet (409 not_ready)
//   - ErrReauthRequired: the connection failed or expired; reconnect it
//     (RequestConnectionInput.ConnectionID) or start a new one
//     (409 reauth_required)
//   - ErrNotFound: unknown connection, or another agent's (404)
//   - ErrUnauthorized: the gateway refused the API key (401)
//   - ErrNotSupported: the gateway lacks the operation (501 on Refresh, no
//     DELETE route for DeleteConnection)
//   - ErrFailed: WaitForActive saw the connection fail
//
// Token's String, Format and LogValue redact the access token, and the
// client never logs tokens, keys or states, so errors and log lines are
// safe to keep.
//
// # Retries
//
// Each call is tried up to three times by default (DefaultRetryPolicy) when
// the gateway answers 429, 502 or 503 or cannot be reached. A Retry-After
// of at most the policy's MaxDelay is waited; a longer one is not, and the
// *APIError comes back at once with the wait in RetryAfter. Otherwise the
// pause is drawn with full jitter from an exponentially growing range. 400, 401, 404 and 409 are never retried. A
// wait that would outlast the context's deadline is skipped and the last
// error returned. WithRetry changes the policy; RetryPolicy{MaxAttempts: 1}
// turns retries off. WithLogger logs one debug line per attempt (method,
// route, status, attempt, duration).
//
// # Webhooks
//
// VerifyWebhook checks a message in the Standard Webhooks format Dromos
// signs (docs/WEBHOOKS.md) against an endpoint's whsec_ secret, refuses
// timestamps more than the tolerance (default 5 minutes) away from now,
// and returns the typed WebhookEvent.
package sdk
