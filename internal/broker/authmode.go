package broker

import (
	"net/http"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/registry"
)

// connectByMode sends a consent request for a provider whose auth_mode is
// not the authorization-code flow to the flow that mode uses; handled is
// false for oauth2_code, which the caller runs itself.
func (b *Broker) connectByMode(w http.ResponseWriter, r *http.Request, req consentRequest, prov registry.Provider) (handled bool, err error) {
	switch prov.Profile.Mode() {
	case provider.ModeClientCredentials:
		if req.Credentials != nil {
			return true, httpapi.BadRequest("provider %q uses auth_mode %s: credentials are for api_key and basic providers", prov.Row.Name, prov.Profile.Mode())
		}
		if req.ConnectionID != "" {
			return true, httpapi.BadRequest("connection_id cannot be used with auth_mode oauth2_client_credentials: every request makes a new connection")
		}
		req.ProviderID = prov.Row.ID
		return true, b.machineConnection(w, r, req)
	case provider.ModeDeviceCode:
		return true, b.deviceConnection(w, r, req, prov)
	case provider.ModeAPIKey, provider.ModeBasic:
		return true, b.keyConnection(w, r, req, prov)
	case provider.ModeCode:
		if req.Credentials != nil {
			return true, httpapi.BadRequest("provider %q uses auth_mode %s: credentials are for api_key and basic providers", prov.Row.Name, prov.Profile.Mode())
		}
		return false, nil
	}
	return true, &httpapi.Error{Status: http.StatusNotImplemented, Code: httpapi.CodeNotImplemented,
		Message: "provider " + prov.Row.Name + " uses auth_mode " + prov.Profile.Mode() + ", which this broker cannot connect yet"}
}
