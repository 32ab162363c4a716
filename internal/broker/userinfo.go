package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// userinfo is the part of an OIDC userinfo answer the broker keeps.
type userinfo struct {
	Subject string `json:"sub"`
	Email   string `json:"email"`
}

// fetchUserinfo asks the provider's userinfo endpoint who the access token
// belongs to. It never follows redirects, reads at most 64 KiB and gives up
// after 5 s; the answer only counts when its sub equals the verified
// id_token's (OIDC Core §5.3.2), which the caller checks.
func (b *Broker) fetchUserinfo(ctx context.Context, endpoint, accessToken string) (userinfo, error) {
	if b.userinfoClient == nil {
		return userinfo{}, errors.New("no userinfo client")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return userinfo{}, err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := b.userinfoClient.Do(req)
	if err != nil {
		return userinfo{}, fmt.Errorf("userinfo request failed: %w", errors.Unwrap(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return userinfo{}, fmt.Errorf("userinfo answered HTTP %d", resp.StatusCode)
	}
	var u userinfo
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&u); err != nil {
		return userinfo{}, errors.New("userinfo answer is not JSON (or is a signed JWT, which is not supported)")
	}
	return u, nil
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
