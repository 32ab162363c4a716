package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/dromos-dev/dromos/internal/provider"
)

// userinfo is the part of an OIDC userinfo answer the broker keeps.
type userinfo struct {
	Subject string `json:"sub"`
	Email   string `json:"email"`
	// EmailVerified is a boolean, or the string "true" some providers send.
	EmailVerified any `json:"email_verified"`
}

// verifiedEmail is the answer's e-mail address when the provider vouches
// for it, else "".
func (u userinfo) verifiedEmail() string {
	if u.EmailVerified == true || u.EmailVerified == "true" {
		return u.Email
	}
	return ""
}

// fetchUserinfo asks the provider's userinfo endpoint who the access token
// belongs to. The answer only counts when its sub equals the verified
// id_token's (OIDC Core §5.3.2), which the caller checks.
func (b *Broker) fetchUserinfo(ctx context.Context, endpoint, accessToken string) (userinfo, error) {
	body, err := b.bearerGET(ctx, "userinfo", endpoint, accessToken, 64<<10)
	if err != nil {
		return userinfo{}, err
	}
	var u userinfo
	if err := json.Unmarshal(body, &u); err != nil {
		return userinfo{}, errors.New("userinfo answer is not JSON (or is a signed JWT, which is not supported)")
	}
	return u, nil
}

// fetchResources runs a profile's resource lookup (Atlassian sites, Xero
// tenants) with a new access token and returns the provider data it gives.
func (b *Broker) fetchResources(ctx context.Context, lookup *provider.ResourceLookup, endpoint, accessToken string) (map[string]string, error) {
	body, err := b.bearerGET(ctx, "resource lookup", endpoint, accessToken, 256<<10)
	if err != nil {
		return nil, err
	}
	return lookup.Parse(body, lookup.TokenEvent(accessToken))
}

// bearerGET makes one back-channel GET with an access token. It never
// follows redirects, reads at most limit bytes and gives up after 5 s; an
// answer other than 200 or one that is too large is an error that quotes
// nothing of the body.
func (b *Broker) bearerGET(ctx context.Context, what, endpoint, accessToken string, limit int64) ([]byte, error) {
	if b.userinfoClient == nil {
		return nil, fmt.Errorf("no client for the %s request", what)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := b.userinfoClient.Do(req)
	if err != nil {
		// The URL error would quote the endpoint; the cause is enough.
		return nil, fmt.Errorf("%s request failed: %w", what, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered HTTP %d", what, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s answer could not be read: %w", what, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%s answer is larger than %d bytes", what, limit)
	}
	return body, nil
}

// noRedirects wraps a client so that back-channel calls never follow one.
func noRedirects(c *http.Client) *http.Client {
	if c == nil {
		return nil
	}
	cp := *c
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cp.Jar = nil
	return &cp
}
