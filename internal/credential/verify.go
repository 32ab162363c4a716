package credential

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// RefusedError says the provider's verification endpoint did not accept
// the credential. It carries the status only: never the body, which may
// echo the key.
type RefusedError struct{ Status int }

func (e *RefusedError) Error() string {
	return fmt.Sprintf("the provider refused the credential (verification answered HTTP %d)", e.Status)
}

// ErrUnreachable wraps a verification that got no answer: the credential
// is neither accepted nor refused.
var ErrUnreachable = errors.New("credential verification: no answer from the provider")

// verifyTimeout bounds the whole verification request.
const verifyTimeout = 10 * time.Second

// Verify sends v with c injected the way an agent would send it. It
// returns nil when the status is one v expects, a *RefusedError for any
// other status, and an error wrapping ErrUnreachable when no answer came.
// hc should refuse internal addresses when the URL is not trusted (the
// broker's outbound client) and must not follow redirects: a key in a
// custom header would follow them to any host. nil is a client that
// follows none.
func Verify(ctx context.Context, hc *http.Client, v Verification, c Credential) error {
	if hc == nil {
		hc = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	ctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, v.Method, v.URL, nil)
	if err != nil {
		return fmt.Errorf("%w: building the request failed", ErrUnreachable)
	}
	for k, val := range v.Headers {
		req.Header.Set(k, val)
	}
	c.Apply(req.Header)
	resp, err := hc.Do(req)
	if err != nil {
		// The transport's error names the URL only; the key is in a header.
		return fmt.Errorf("%w: %s %s: %v", ErrUnreachable, v.Method, v.URL, errors.Unwrap(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	want := v.ExpectStatus
	if len(want) == 0 {
		want = []int{http.StatusOK}
	}
	if slices.Contains(want, resp.StatusCode) {
		return nil
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		// The provider is failing or busy: that says nothing of the key.
		return fmt.Errorf("%w: %s answered HTTP %d", ErrUnreachable, strings.SplitN(v.URL, "?", 2)[0], resp.StatusCode)
	}
	return &RefusedError{Status: resp.StatusCode}
}
