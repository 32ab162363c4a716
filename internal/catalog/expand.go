package catalog

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dromos-dev/dromos/internal/provider"
)

// Expand completes a profile that names a template.
//
// Every field p leaves empty is taken from the template, with its
// placeholders filled from p.TemplateParams (each is required and checked
// against its kind, so no value can add a path, a query, userinfo or
// another host to a URL). Fields p sets win: scalar fields and scopes
// replace the template's, auth_params are merged key by key with p's
// values winning, and quirks are the union of both, because a template's
// quirks describe how the provider behaves rather than a preference.
// EnableDiscovery is on when either side turns it on.
//
// Call Expand on the profile as decoded, before Normalize: Normalize fills
// defaults (token_endpoint_auth_method "auto", display_name = name) that
// would hide the template's values. The result is normalised, keeps
// Template (the canonical name) and TemplateParams (canonical values) so a
// registration remembers its origin, and passes Validate. A profile
// without a template is returned unchanged.
//
// Errors wrap ErrUnknownTemplate (with the closest names), ErrTemplateParams,
// or the *provider.ValidationError of the result.
func (c *Catalog) Expand(p provider.Profile) (provider.Profile, error) {
	name := strings.TrimSpace(p.Template)
	if name == "" {
		if len(p.TemplateParams) > 0 {
			return provider.Profile{}, fmt.Errorf("%w: template_params without a template", ErrTemplateParams)
		}
		return p, nil
	}
	t, ok := c.Get(name)
	if !ok {
		return provider.Profile{}, c.unknown(name)
	}
	return expandTemplate(t, p)
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

func expandTemplate(t Template, p provider.Profile) (provider.Profile, error) {
	vals, err := resolveParams(t, p.TemplateParams)
	if err != nil {
		return provider.Profile{}, err
	}
	declared := make(map[string]Placeholder, len(t.Placeholders))
	for _, ph := range t.Placeholders {
		declared[ph.Name] = ph
	}
	out := p
	out.Template = t.Name
	out.TemplateParams = nil
	if len(vals) > 0 {
		out.TemplateParams = vals
	}
	if blank(out.Name) {
		out.Name = t.Name
	}
	if blank(out.DisplayName) {
		out.DisplayName = t.DisplayName
	}
	for _, f := range []struct {
		dst  *string
		tmpl string
	}{
		{&out.Issuer, t.Issuer}, {&out.AuthURL, t.AuthURL}, {&out.TokenURL, t.TokenURL},
		{&out.RevocationURL, t.RevocationURL}, {&out.UserinfoURL, t.UserinfoURL}, {&out.JWKSURL, t.JWKSURL},
		{&out.DeviceAuthorizationURL, deviceURL(t, p)},
	} {
		if !blank(*f.dst) || f.tmpl == "" {
			continue
		}
		if *f.dst, err = render(f.tmpl, declared, vals); err != nil {
			return provider.Profile{}, fmt.Errorf("template %q: %w", t.Name, err)
		}
	}
	if blank(out.AuthMode) {
		out.AuthMode = t.AuthMode
	}
	if out.Credential == nil {
		out.Credential = cloneSpec(t.Credential)
	}
	out.EnableDiscovery = p.EnableDiscovery || t.EnableDiscovery
	if len(out.Scopes) == 0 {
		out.Scopes = slices.Clone(t.Scopes)
	}
	if blank(out.TokenEndpointAuthMethod) {
		out.TokenEndpointAuthMethod = t.TokenEndpointAuthMethod
	}
	out.AuthParams = mergeMaps(t.AuthParams, p.AuthParams)
	// Header names compare without regard to case: the profile's
	// notion-version replaces the template's Notion-Version.
	fromProfile, dup := provider.CanonicalHeaders(p.TokenRequestHeaders)
	if dup != "" {
		return provider.Profile{}, &provider.ValidationError{Problems: []string{"token_request_headers names " + dup + " twice"}}
	}
	fromTemplate, _ := provider.CanonicalHeaders(t.TokenRequestHeaders)
	out.TokenRequestHeaders = mergeMaps(fromTemplate, fromProfile)
	out.Quirks = append(slices.Clone(t.Quirks), p.Quirks...)
	if out.TokenLifetimeSeconds == 0 {
		out.TokenLifetimeSeconds = t.TokenLifetimeSeconds
	}
	if len(out.APIBaseURLs) == 0 {
		for _, b := range t.APIBaseURLs {
			rendered, err := render(b, declared, vals)
			if err != nil {
				return provider.Profile{}, fmt.Errorf("template %q: api_base_urls: %w", t.Name, err)
			}
			out.APIBaseURLs = append(out.APIBaseURLs, rendered)
		}
	}
	if blank(out.APIBaseURLProviderData) {
		out.APIBaseURLProviderData = t.APIBaseURLProviderData
	}
	if out.APIAuth == nil {
		out.APIAuth = cloneAPIAuth(t.APIAuth)
	}
	if out.RefreshTokenIdleLifetimeSeconds == 0 {
		out.RefreshTokenIdleLifetimeSeconds = t.RefreshTokenIdleLifetimeSeconds
	}
	out.Normalize()
	if err := out.Validate(); err != nil {
		return provider.Profile{}, fmt.Errorf("catalog: template %q: %w", t.Name, err)
	}
	return out, nil
}

// resolveParams checks the given template_params against t's placeholders
// and returns their canonical values, reporting every problem at once.
func resolveParams(t Template, given map[string]string) (map[string]string, error) {
	var probs []string
	vals := make(map[string]string, len(t.Placeholders))
	for _, ph := range t.Placeholders {
		raw := strings.TrimSpace(given[ph.Name])
		if raw == "" {
			probs = append(probs, fmt.Sprintf("%s is required (%s, e.g. %s)", ph.Name, ph.Description, ph.Example))
			continue
		}
		v, err := kinds[ph.Kind].check(raw)
		if err != nil {
			probs = append(probs, fmt.Sprintf("%s %v", ph.Name, err))
			continue
		}
		vals[ph.Name] = v
	}
	for k := range given {
		if !slices.ContainsFunc(t.Placeholders, func(ph Placeholder) bool { return ph.Name == k }) {
			probs = append(probs, fmt.Sprintf("unknown parameter %q", shorten(k)))
		}
	}
	if len(probs) > 0 {
		slices.Sort(probs)
		return nil, fmt.Errorf("%w for template %q: %s", ErrTemplateParams, t.Name, strings.Join(probs, "; "))
	}
	return vals, nil
}

// shorten keeps operator input quoted in an error to a readable length.
func shorten(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func (c *Catalog) unknown(name string) error {
	if near := c.closeNames(strings.ToLower(name)); len(near) > 0 {
		return fmt.Errorf("%w %q; did you mean %s?", ErrUnknownTemplate, shorten(name), strings.Join(near, ", "))
	}
	return fmt.Errorf("%w %q (known: %s)", ErrUnknownTemplate, shorten(name), strings.Join(c.Names(), ", "))
}

// closeNames lists the templates whose name or alias is within two edits
// of name, or contains it or is contained in it.
func (c *Catalog) closeNames(name string) []string {
	var out []string
	for key, i := range c.index {
		near := editDistance(name, key) <= 2 ||
			(len(name) >= 3 && strings.Contains(key, name)) || (len(key) >= 3 && strings.Contains(name, key))
		if near && !slices.Contains(out, c.templates[i].Name) {
			out = append(out, c.templates[i].Name)
		}
	}
	slices.Sort(out)
	return out
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 128 || len(b) > 128 {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// mergeMaps is the template's map with the profile's entries over it (nil
// when both are empty).
func mergeMaps(fromTemplate, fromProfile map[string]string) map[string]string {
	if len(fromTemplate) == 0 && len(fromProfile) == 0 {
		return nil
	}
	merged := make(map[string]string, len(fromTemplate)+len(fromProfile))
	maps.Copy(merged, fromTemplate)
	maps.Copy(merged, fromProfile)
	return merged
}
