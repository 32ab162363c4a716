package authreq

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/provider"
)

// Pusher sends a pushed authorization request (exchange.Client does).
type Pusher interface {
	PushAuthorization(ctx context.Context, parURL string, ep exchange.Endpoint, params url.Values) (exchange.PushedRequest, error)
}

// ErrNoPAREndpoint: pushing is required (by the provider or the profile)
// but no endpoint is known to push to.
var ErrNoPAREndpoint = errors.New("authreq: pushed authorization requests are required but the provider names no endpoint for them")

// Target is where the request goes.
type Target struct {
	// Auth is the authorization endpoint.
	Auth string
	// PAR is the pushed authorization request endpoint, "" when none.
	PAR string
	// RequirePAR: the provider accepts only pushed requests.
	RequirePAR bool
}

// URL returns the browser's URL for req. When the request is pushed, it
// authenticates at t.PAR as the client does at the token endpoint; client
// builds that endpoint (and is only called then, so the client secret is
// opened only when it is needed).
func URL(ctx context.Context, p Pusher, prof *provider.Profile, t Target, client func() (exchange.Endpoint, error), req provider.AuthRequest) (string, error) {
	if !t.RequirePAR && !prof.UsePAR {
		return prof.AuthorizationURL(t.Auth, req)
	}
	if t.PAR == "" {
		return "", ErrNoPAREndpoint
	}
	ep, err := client()
	if err != nil {
		return "", fmt.Errorf("authreq: client credentials: %w", err)
	}
	params := prof.AuthorizationParams(req)
	// client_id travels with the client's authentication (and the
	// exchange package adds it): the pushed parameters are the request's.
	params.Del("client_id")
	pushed, err := p.PushAuthorization(ctx, t.PAR, ep, params)
	if err != nil {
		return "", err
	}
	return provider.PushedAuthorizationURL(t.Auth, req.ClientID, pushed.RequestURI)
}
