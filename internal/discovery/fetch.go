package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

const (
	openIDSuffix     = "/.well-known/openid-configuration"
	authServerPrefix = "/.well-known/oauth-authorization-server"
)

// fetchDocument fetches and validates the metadata of one issuer without
// touching the cache.
func (c *Cache) fetchDocument(ctx context.Context, issuer string) (Metadata, error) {
	u, err := parseIssuer(issuer)
	if err != nil {
		return Metadata{}, &Error{Issuer: issuer, Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	docURL := openIDConfigURL(issuer)
	md, status, err := c.getDocument(ctx, docURL)
	if status == http.StatusNotFound {
		// Pure OAuth 2.0 servers publish only RFC 8414 metadata.
		docURL = authServerURL(u)
		md, status, err = c.getDocument(ctx, docURL)
		if status == http.StatusNotFound {
			err = fmt.Errorf("%w: 404 for both openid-configuration and oauth-authorization-server", ErrHTTPStatus)
		}
	}
	if err != nil {
		de := &Error{Issuer: issuer, URL: docURL, Err: err}
		if errors.Is(err, ErrHTTPStatus) {
			de.Status = status
		}
		return Metadata{}, de
	}
	if err := validate(md, issuer, u); err != nil {
		return Metadata{}, &Error{Issuer: issuer, URL: docURL, Err: err}
	}
	return md, nil
}

func parseIssuer(issuer string) (*url.URL, error) {
	u, err := url.Parse(issuer)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: not a URL", ErrInvalidIssuer)
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("%w: scheme must be https (or http)", ErrInvalidIssuer)
	case u.Host == "":
		return nil, fmt.Errorf("%w: no host", ErrInvalidIssuer)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("%w: must not have a query or fragment", ErrInvalidIssuer)
	case u.User != nil:
		return nil, fmt.Errorf("%w: must not contain user information", ErrInvalidIssuer)
	}
	return u, nil
}

// openIDConfigURL appends the well-known suffix to the issuer, as OIDC
// Discovery §4 requires, after dropping a trailing slash.
func openIDConfigURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + openIDSuffix
}

// authServerURL inserts the well-known segment between host and path
// (RFC 8414 §3.1): https://as.example/tenant becomes
// https://as.example/.well-known/oauth-authorization-server/tenant.
func authServerURL(issuer *url.URL) string {
	u := *issuer
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	u.RawPath = ""
	u.Path = ""
	return u.String() + authServerPrefix + path
}

// getDocument performs one GET. The returned status is 0 when no response
// arrived.
func (c *Cache) getDocument(ctx context.Context, docURL string) (Metadata, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, docURL, nil)
	if err != nil {
		return Metadata{}, 0, fmt.Errorf("%w: cannot build request", ErrInvalidIssuer)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return Metadata{}, 0, fmt.Errorf("%w: %w", ErrUnreachable, unwrapURLError(err))
	}
	defer func() {
		// Drain a little so the connection can be reused; never all of it.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			return Metadata{}, resp.StatusCode, fmt.Errorf("%w: %d (redirects are not followed)", ErrHTTPStatus, resp.StatusCode)
		}
		return Metadata{}, resp.StatusCode, fmt.Errorf("%w: %d", ErrHTTPStatus, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return Metadata{}, resp.StatusCode, fmt.Errorf("%w: reading body: %w", ErrUnreachable, err)
	}
	if int64(len(body)) > c.maxBody {
		return Metadata{}, resp.StatusCode, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.maxBody)
	}
	var md Metadata
	if err := json.Unmarshal(body, &md); err != nil {
		return Metadata{}, resp.StatusCode, describeJSONError(err)
	}
	return md, resp.StatusCode, nil
}

// describeJSONError keeps the useful part of a decoding error (which field
// has the wrong type) without quoting any of the body.
func describeJSONError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field == "" {
			return fmt.Errorf("%w: top-level value is a JSON %s", ErrNotJSON, typeErr.Value)
		}
		return fmt.Errorf("%w: field %s is a JSON %s", ErrNotJSON, typeErr.Field, typeErr.Value)
	}
	return ErrNotJSON
}

// unwrapURLError drops the *url.Error wrapper, whose message repeats the
// method and URL that Error already reports.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
