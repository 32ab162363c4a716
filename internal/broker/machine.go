package broker

import (
	"net/http"

	"github.com/dromos-dev/dromos/internal/httpapi"
)

// machineConnection creates a connection that needs no user: the
// client_credentials grant.
func (b *Broker) machineConnection(w http.ResponseWriter, r *http.Request, req consentRequest) error {
	return &httpapi.Error{Status: http.StatusNotImplemented, Code: httpapi.CodeNotImplemented, Message: "the client_credentials grant is not available yet"}
}
