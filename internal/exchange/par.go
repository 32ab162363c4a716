package exchange

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// PushedRequest is the answer of a pushed authorization request endpoint
// (RFC 9126 §2.2): the reference the browser carries instead of the
// request itself.
type PushedRequest struct {
	RequestURI string
	ExpiresIn  time.Duration
}

// maxRequestURI bounds the request_uri accepted from a provider; it ends
// up in the browser's URL.
const maxRequestURI = 1024

// PushAuthorization sends the authorization request params to the
// provider's pushed authorization request endpoint parURL (RFC 9126),
// authenticated as at the token endpoint (ep's method, with the AuthAuto
// fallback), and returns the request_uri to send the browser with.
// params must not hold client_id or a client secret; client_id is added
// here. Errors are those of the token calls: an OAuth error answer is an
// *Error (invalid_request, invalid_client…).
func (c *Client) PushAuthorization(ctx context.Context, parURL string, ep Endpoint, params url.Values) (PushedRequest, error) {
	if err := ep.validate(); err != nil {
		return PushedRequest{}, err
	}
	if err := validateURL(parURL, "pushed authorization request URL"); err != nil {
		return PushedRequest{}, err
	}
	if params.Has("request_uri") {
		return PushedRequest{}, fmt.Errorf("%w: request_uri may not be pushed", ErrInvalidInput)
	}
	form := make(url.Values, len(params)+1)
	for k, v := range params {
		form[k] = v
	}
	// Methods that put the client in the body add client_id themselves;
	// basic and private_key_jwt do not, yet RFC 9126 §2.1 wants it, as
	// the authorization request it stands for has it.
	form.Set("client_id", ep.ClientID)
	var out PushedRequest
	err := c.post(ctx, "pushed_authorization", parURL, ep, form, func(r response) error {
		if r.status != http.StatusCreated && r.status != http.StatusOK {
			_, err := ParseResponse(r.status, r.contentType, r.body, r.received)
			if err == nil {
				err = fmt.Errorf("%w: HTTP %d", ErrMalformed, r.status)
			}
			return err
		}
		if len(r.body) == 0 {
			return fmt.Errorf("%w: empty pushed authorization answer", ErrMalformed)
		}
		fields, err := decodeJSON(r.body)
		if err != nil {
			return err
		}
		requestURI, _ := fields["request_uri"].(string)
		exp, ok := expiresIn(fields["expires_in"])
		switch {
		case !ok:
			return fmt.Errorf("%w: pushed authorization answer without a positive expires_in", ErrMalformed)
		case requestURI == "" || len(requestURI) > maxRequestURI || strings.ContainsAny(requestURI, " \t\r\n"):
			return fmt.Errorf("%w: pushed authorization answer without a usable request_uri", ErrMalformed)
		}
		out = PushedRequest{RequestURI: requestURI, ExpiresIn: time.Duration(exp) * time.Second}
		return nil
	})
	if err != nil {
		return PushedRequest{}, err
	}
	return out, nil
}
