package delivery

import (
	"net/http"

	"github.com/dromos-dev/dromos/internal/netguard"
)

// NewClient returns the HTTP client deliveries go out with: every dial is
// checked by the SSRF guard (loopback and private addresses refused unless
// allowPrivate; cloud metadata and link-local always refused), no proxy,
// and redirects are not followed: a 3xx is the answer, and a failure.
func NewClient(allowPrivate bool) *http.Client {
	tr := netguard.Transport(allowPrivate)
	tr.MaxIdleConnsPerHost = 4
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
