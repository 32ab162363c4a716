package broker

import (
	"net/url"

	"github.com/dromos-dev/dromos/internal/httpapi"
)

// wantsIDToken says whether a token answer carries the provider's
// id_token: only when the operator turned it on for everyone
// (EXPOSE_ID_TOKEN) or the caller asks with id_token=true (the gateway
// does for agents with the id-token option). The verified sub, email and
// issuer are on the connection either way.
func (b *Broker) wantsIDToken(q url.Values) (bool, error) {
	switch q.Get("id_token") {
	case "":
		return b.cfg.ExposeIDToken, nil
	case "true", "1":
		return true, nil
	case "false", "0":
		return b.cfg.ExposeIDToken, nil
	}
	return false, httpapi.BadRequest("id_token must be true or false")
}
