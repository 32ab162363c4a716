package catalog

import (
	"maps"
	"slices"
	"strings"

	"github.com/dromos-dev/dromos/internal/credential"
	"github.com/dromos-dev/dromos/internal/provider"
)

// cloneSpec deep-copies a credential spec, so a profile cannot change the
// catalog's.
func cloneSpec(s *credential.Spec) *credential.Spec {
	if s == nil {
		return nil
	}
	c := *s
	if s.Verify != nil {
		v := *s.Verify
		v.ExpectStatus = slices.Clone(v.ExpectStatus)
		v.Headers = maps.Clone(v.Headers)
		c.Verify = &v
	}
	return &c
}

// deviceURL is the template's device authorization endpoint when the
// profile uses the device grant: a code-flow registration of the same
// provider must not inherit it (Validate refuses the endpoint there).
func deviceURL(t Template, p provider.Profile) string {
	mode := strings.ToLower(strings.TrimSpace(p.AuthMode))
	if mode == "" {
		mode = t.AuthMode
	}
	if mode != provider.ModeDeviceCode {
		return ""
	}
	return t.DeviceAuthorizationURL
}

// validateKeyTemplate lists the rules an api_key or basic template breaks:
// the documentation fields, a credential spec with a verification request
// (the catalog promises one for every key-based API) and none of the
// OAuth fields.
func validateKeyTemplate(t Template) []string {
	var probs []string
	add := func(s string) { probs = append(probs, s) }
	for _, a := range t.Aliases {
		if !templateNameRE.MatchString(a) || a == t.Name {
			add("alias " + a + " is not a valid, distinct name")
		}
	}
	for field, v := range map[string]string{"display_name": t.DisplayName, "app_registration": t.AppRegistration, "source": t.Source} {
		if strings.TrimSpace(v) == "" {
			add(field + " is required")
		}
	}
	if !strings.HasPrefix(t.DocsURL, "https://") || strings.ContainsAny(t.DocsURL, "{} ") {
		add("docs_url must be an https URL")
	}
	if t.Credential == nil || t.Credential.Verify == nil {
		add("a key-based template needs credential.verify")
	} else if !strings.HasPrefix(t.Credential.Verify.URL, "https://") {
		add("credential.verify.url must be an https URL")
	}
	if len(t.Placeholders) > 0 || t.Refresh != "" || t.PKCE != "" || t.TokenEndpointAuthMethod != "" || t.Offline != "" || len(t.Scopes) > 0 {
		add("a key-based template has no OAuth fields (placeholders, refresh, pkce, token_endpoint_auth_method, offline, scopes)")
	}
	if len(probs) > 0 {
		slices.Sort(probs)
		return probs
	}
	if _, err := expandTemplate(t, provider.Profile{Template: t.Name}); err != nil {
		add("expanding: " + err.Error())
	}
	return probs
}
