package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"

	"github.com/dromos-dev/dromos/internal/agentpolicy"
	"github.com/dromos-dev/dromos/internal/apikey"
	"github.com/dromos-dev/dromos/internal/httpapi"
)

// anonymousWorkspace is the broker workspace of every anonymous caller.
const anonymousWorkspace = "default"

// AnonymousClient is the client name, and so the owner at the broker, of
// every anonymous caller (GATEWAY_ALLOW_ANONYMOUS). Anonymous callers share
// their connections with each other and with no one else; the name is
// reserved in GATEWAY_API_KEYS.
const AnonymousClient = "anonymous"

// Caller is the authenticated agent behind a request.
type Caller struct {
	// Name is the client name from GATEWAY_API_KEYS, or AnonymousClient.
	// It is never empty: it is the owner filter of every broker call.
	Name string
	// Anonymous is true for a caller let in without a key.
	Anonymous bool
	// Policy is what the agent's GATEWAY_API_KEYS options allow and ask
	// for; zero for anonymous callers.
	Policy agentpolicy.Policy
}

// workspace is the broker workspace the caller's connections live in.
func (c Caller) workspace() string {
	if c.Anonymous {
		return anonymousWorkspace
	}
	return c.Name
}

// authenticator checks presented keys against the configured hashes.
type authenticator struct {
	clients   []ClientKey
	anonymous bool
}

// errUnauthorized is the one answer for a missing, malformed or wrong key,
// so that nothing tells which it was.
func errUnauthorized() *httpapi.Error {
	return httpapi.Unauthorized("a valid API key is required (Authorization: Bearer KEY or X-API-Key: KEY)")
}

// authenticate maps credentials to a Caller. authorization holds the
// values of the Authorization header, apiKey of the X-API-Key header; either
// may be empty. The comparison runs over every configured key whatever the
// outcome, so its timing tells nothing about which key came close. A request
// presenting two different credentials is refused (package apikey).
func (a *authenticator) authenticate(authorization, apiKey []string) (Caller, error) {
	if len(a.clients) == 0 {
		if a.anonymous {
			return Caller{Name: AnonymousClient, Anonymous: true}, nil
		}
		return Caller{}, errUnauthorized()
	}
	key, err := apikey.Presented(authorization, apiKey)
	if errors.Is(err, apikey.ErrAmbiguous) {
		return Caller{}, httpapi.Unauthorized("send one API key, once: Authorization: Bearer KEY or X-API-Key: KEY (both only when they carry the same key)")
	}
	if err != nil {
		return Caller{}, errUnauthorized()
	}
	sum := sha256.Sum256([]byte(key))
	match := -1
	for i := range a.clients {
		eq := subtle.ConstantTimeCompare(sum[:], a.clients[i].SHA256[:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return Caller{}, errUnauthorized()
	}
	return Caller{Name: a.clients[match].Name, Policy: a.clients[match].Policy}, nil
}
