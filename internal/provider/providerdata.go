package provider

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ProviderDataPrefix marks the connection metadata entries that hold
// provider data: values a provider hands over during the connection
// (QuickBooks' realmId, Salesforce's instance_url, Atlassian cloud ids…)
// that agents need for their API calls. Agents' own metadata may not use
// the prefix.
const ProviderDataPrefix = "provider."

// legacyDataKeys are the metadata keys earlier releases kept callback
// parameters under, before provider data had its prefix.
var legacyDataKeys = map[string]string{"callback.realmId": "realmId", "callback.shop": "shop"}

// DataKey reports whether a connection metadata key holds provider data,
// and under which name agents see it.
func DataKey(k string) (string, bool) {
	if name, ok := strings.CutPrefix(k, ProviderDataPrefix); ok {
		return name, true
	}
	name, ok := legacyDataKeys[k]
	return name, ok
}

// maxProviderValue bounds one provider data value; maxResources bounds how
// many ids a resource lookup keeps.
const (
	maxProviderValue = 1024
	maxResources     = 50
)

// ErrBadProviderData is returned for a provider answer that does not have
// the shape a quirk expects. It never quotes the answer.
var ErrBadProviderData = errors.New("provider: malformed provider data")

// ResourceLookup describes one call the broker makes after the code
// exchange, with the new access token, to learn which sites or tenants the
// token reaches: a GET answering a JSON array of objects. The first
// object's fields go under IDKey, NameKey and URLKey, every object's id
// (comma-separated, in the provider's order) under IDsKey.
type ResourceLookup struct {
	DefaultURL                     string
	IDField, NameField, URLField   string
	IDKey, IDsKey, NameKey, URLKey string
	// EventField names the member that tells which sign-in made each
	// resource reachable, and EventClaim the access-token claim naming
	// this sign-in (Xero: authEventId and authentication_event_id). With
	// them, IDKey and NameKey describe the one resource of this consent,
	// and are left out rather than guessed when that is not one resource.
	EventField, EventClaim string
}

// Resources returns the profile's resource lookup and the URL to call (the
// profile's resources_url when set, the quirk's default otherwise), or nil.
func (p *Profile) Resources() (*ResourceLookup, string) {
	for _, name := range p.Quirks {
		if l := quirks[name].resources; l != nil {
			if p.ResourcesURL != "" {
				return l, p.ResourcesURL
			}
			return l, l.DefaultURL
		}
	}
	return nil, ""
}

func (p *Profile) lookupQuirks() int {
	n := 0
	for _, name := range p.Quirks {
		if quirks[name].resources != nil {
			n++
		}
	}
	return n
}

// TokenData picks the token response members the profile's quirks keep
// (from the exchange client's Extra). A member that is missing is left
// out; one that is not a plausible string is an error wrapping
// ErrBadProviderData.
func (p *Profile) TokenData(extra map[string]any) (map[string]string, error) {
	var out map[string]string
	for _, name := range p.Quirks {
		for _, f := range quirks[name].tokenFields {
			raw, ok := extra[f]
			if !ok {
				continue
			}
			s, ok := raw.(string)
			if !ok || !plausibleValue(s, maxProviderValue) {
				return nil, fmt.Errorf("%w: token response member %s", ErrBadProviderData, f)
			}
			if strings.HasSuffix(f, "_url") {
				if u, err := url.Parse(s); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
					return nil, fmt.Errorf("%w: token response member %s is not an https URL", ErrBadProviderData, f)
				}
			}
			if out == nil {
				out = make(map[string]string)
			}
			out[f] = s
		}
	}
	return out, nil
}

// Parse reads a resource lookup's answer: IDsKey lists every resource,
// IDKey (with NameKey, URLKey) describes the first, or, for a lookup with
// an EventField, the only resource made reachable by the sign-in event
// (the access token's EventClaim; "" when unknown). An answer that is not
// a JSON array of objects, lists nothing, or has an id that is not
// plausible is an error wrapping ErrBadProviderData.
func (l *ResourceLookup) Parse(body []byte, event string) (map[string]string, error) {
	var items []map[string]any
	if err := json.Unmarshal(body, &items); err != nil {
		return nil, fmt.Errorf("%w: answer is not a JSON array of objects", ErrBadProviderData)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: the token reaches no resource", ErrBadProviderData)
	}
	str := func(item map[string]any, field string) (string, bool) {
		s, ok := item[field].(string)
		return s, ok && plausibleValue(s, 255)
	}
	out := map[string]string{}
	var ids []string
	chosen := 0 // the item IDKey describes; -1: none
	if l.EventField != "" {
		chosen = -1
		matches := 0
		for i, item := range items {
			if e, ok := item[l.EventField].(string); ok && event != "" && e == event {
				chosen, matches = i, matches+1
			}
		}
		if matches != 1 {
			chosen = -1
		}
		if len(items) == 1 {
			chosen = 0 // the token reaches one resource: no choice to make
		}
	}
	for i, item := range items {
		id, ok := str(item, l.IDField)
		if !ok || strings.Contains(id, ",") {
			return nil, fmt.Errorf("%w: resource %d has no usable %s", ErrBadProviderData, i, l.IDField)
		}
		if len(ids) < maxResources {
			ids = append(ids, id)
		}
		if i != chosen {
			continue
		}
		out[l.IDKey] = id
		if l.NameKey != "" {
			if name, ok := item[l.NameField].(string); ok && name != "" && len(name) <= 255 &&
				utf8.ValidString(name) && !strings.ContainsFunc(name, unicode.IsControl) {
				out[l.NameKey] = name
			}
		}
		if l.URLKey != "" {
			if s, ok := str(item, l.URLField); ok {
				if u, err := url.Parse(s); err == nil && u.Scheme == "https" && u.Host != "" && u.User == nil {
					out[l.URLKey] = s
				}
			}
		}
	}
	out[l.IDsKey] = strings.Join(ids, ",")
	return out, nil
}

func plausibleValue(v string, max int) bool {
	if v == "" || len(v) > max {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// TokenEvent is the sign-in event an access token names in its EventClaim
// ("" when the lookup has none, the token is not a JWT, or the claim is
// missing). The token comes straight from the provider's token endpoint,
// so its payload is read without checking a signature: it only picks
// among the resources the provider itself lists.
func (l *ResourceLookup) TokenEvent(accessToken string) string {
	if l.EventClaim == "" {
		return ""
	}
	parts := strings.Split(accessToken, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return ""
	}
	var claims map[string]any
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	if e, ok := claims[l.EventClaim].(string); ok && plausibleValue(e, 255) {
		return e
	}
	return ""
}
