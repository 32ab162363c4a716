package brokerclient

import (
	"context"
	"net/http"

	"github.com/dromos-dev/dromos/internal/provider"
)

// OpGetProvider reads one provider's API proxy configuration.
const OpGetProvider = "get_provider"

// ProviderAPI is the part of a provider registration the API proxy needs:
// where its API is and how the token is presented. Nothing else of the
// registration is decoded.
type ProviderAPI struct {
	ID                     string            `json:"id"`
	Name                   string            `json:"name"`
	APIBaseURLs            []string          `json:"api_base_urls"`
	APIBaseURLProviderData string            `json:"api_base_url_provider_data"`
	APIAuth                *provider.APIAuth `json:"api_auth"`
}

// ProviderAPI reads a provider's API proxy configuration by id.
func (cl *Client) ProviderAPI(ctx context.Context, id string) (ProviderAPI, error) {
	var out ProviderAPI
	err := cl.do(ctx, call{op: OpGetProvider, method: http.MethodGet, path: []string{"providers", id}}, &out)
	return out, err
}
