package catalog_test

import (
	"fmt"

	"github.com/dromos-dev/dromos/internal/catalog"
	"github.com/dromos-dev/dromos/internal/provider"
)

func ExampleCatalog_Expand() {
	c, err := catalog.Load()
	if err != nil {
		panic(err)
	}
	p, err := c.Expand(provider.Profile{
		Template:       "okta",
		TemplateParams: map[string]string{"domain": "dev-123456.okta.com"},
		ClientID:       "0oa1b2c3",
		ClientSecret:   "secret",
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Name, p.Issuer, p.EnableDiscovery, p.Scopes, p.TokenEndpointAuthMethod)

	_, err = c.Expand(provider.Profile{Template: "okta", TemplateParams: map[string]string{"domain": "evil.test/x"},
		ClientID: "0oa1b2c3", ClientSecret: "secret"})
	fmt.Println(err)
	// Output:
	// okta https://dev-123456.okta.com true [openid email profile offline_access] client_secret_basic
	// catalog: invalid template parameters for template "okta": domain must be a DNS host name such as login.example.com (no scheme, port, path or '@')
}
