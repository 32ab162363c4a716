package provider

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/dromos-dev/dromos/internal/exchange"
)

// Named quirks a profile can switch on. Each is a small behaviour with a
// test of its own; handlers never test provider names.
const (
	// QuirkGoogleOffline: Google gives a refresh token only for
	// access_type=offline, and again on later consents only with
	// prompt=consent; offline_access is not among its documented scopes,
	// so it is dropped.
	QuirkGoogleOffline = "google_offline"
	// QuirkCommaScopes: the provider separates scopes with commas (Slack,
	// Linear, Strava, Shopify) instead of spaces, in the authorization
	// request and in the token response.
	QuirkCommaScopes = "comma_scopes"
	// QuirkSlackUserToken: Slack's user tokens. Scopes are requested as
	// user_scope, comma-separated, and the token comes back nested in the
	// response's authed_user object with token_type "user".
	QuirkSlackUserToken = "slack_user_token"
	// QuirkTokenTypeAny: the token response carries a token_type other than
	// Bearer (Slack's "bot") or none at all (Shopify, LinkedIn), although
	// the token is a bearer credential.
	QuirkTokenTypeAny = "token_type_any"
	// QuirkCallbackRealmID: Intuit (QuickBooks) names the company the user
	// connected in a realmId callback parameter, needed for every API call.
	QuirkCallbackRealmID = "callback_realm_id"
	// QuirkCallbackShop: Shopify names the shop in a shop callback
	// parameter.
	QuirkCallbackShop = "callback_shop"
	// QuirkTokenInstanceURL: Salesforce answers the code exchange with the
	// instance_url every API call must go to.
	QuirkTokenInstanceURL = "token_instance_url"
	// QuirkAtlassianResources: Atlassian API calls name a site by its
	// cloud id, which only the accessible-resources endpoint tells.
	QuirkAtlassianResources = "atlassian_resources"
	// QuirkXeroTenants: Xero API calls carry a xero-tenant-id header; the
	// organisations a token reaches come from the connections endpoint.
	QuirkXeroTenants = "xero_tenants"
	// QuirkJSONTokenRequest: the provider documents its token endpoint
	// with JSON request bodies only (Notion, Atlassian).
	QuirkJSONTokenRequest = "json_token_request"
)

// ErrUnexpectedToken is returned by NormalizeTokenResponse when a token
// response carries another kind of token than the profile asked for.
var ErrUnexpectedToken = errors.New("provider: token response carries an unexpected kind of token")

// ErrBadCallbackParam is returned by CallbackValues for a kept callback
// parameter whose value is not plausible.
var ErrBadCallbackParam = errors.New("provider: malformed callback parameter")

type quirk struct {
	doc    string
	scopes func([]string) []string
	params func(url.Values)
	sep    string
	// scopeParam is the authorization parameter the scopes go into instead
	// of scope, which is then left out.
	scopeParam string
	// callback lists extra callback query parameters to keep.
	callback []string
	// tokenMember and anyTokenType are the exchange parsing switches.
	tokenMember  string
	anyTokenType bool
	// tokenFields lists members of the code exchange's answer to keep as
	// provider data.
	tokenFields []string
	// resources, when set, is read once after the code exchange.
	resources *ResourceLookup
	// jsonBody sends token endpoint requests as JSON.
	jsonBody bool
}

var quirks = map[string]quirk{
	QuirkGoogleOffline: {
		doc: "drop `offline_access`; add `access_type=offline` and `consent` to `prompt` (other `prompt` values are kept)",
		scopes: func(s []string) []string {
			return slices.DeleteFunc(slices.Clone(s), func(x string) bool { return x == "offline_access" })
		},
		params: func(v url.Values) {
			v.Set("access_type", "offline")
			// Google takes a space-separated prompt list: an operator's
			// select_account stays beside the consent a refresh token needs.
			prompts := strings.Fields(v.Get("prompt"))
			if !slices.Contains(prompts, "consent") {
				prompts = append(prompts, "consent")
			}
			v.Set("prompt", strings.Join(prompts, " "))
		},
	},
	QuirkCommaScopes: {
		doc: "join scopes with commas instead of spaces; the token response's commas become spaces",
		sep: ",",
	},
	QuirkSlackUserToken: {
		doc: "request scopes as `user_scope` (commas); take the token from `authed_user`; " +
			"a bot token in its place is an error; token_type `user` is reported as Bearer",
		sep:          ",",
		scopeParam:   "user_scope",
		tokenMember:  "authed_user",
		anyTokenType: true,
	},
	QuirkTokenTypeAny: {
		doc:          "accept any or no `token_type` in the token response and report it as Bearer",
		anyTokenType: true,
	},
	QuirkCallbackRealmID: {
		doc:      "keep the `realmId` callback parameter (Intuit company id)",
		callback: []string{"realmId"},
	},
	QuirkCallbackShop: {
		doc:      "keep the `shop` callback parameter (Shopify shop domain)",
		callback: []string{"shop"},
	},
	QuirkJSONTokenRequest: {
		doc:      "send token endpoint requests as a JSON object instead of a form",
		jsonBody: true,
	},
	QuirkTokenInstanceURL: {
		doc:         "keep the token response's `instance_url` (Salesforce API host) as provider data",
		tokenFields: []string{"instance_url"},
	},
	QuirkAtlassianResources: {
		doc: "after consent, read the sites the token reaches from " + atlassianResourcesURL +
			"; keep `cloud_id`, `cloud_ids` and `site_url` as provider data",
		resources: &ResourceLookup{DefaultURL: atlassianResourcesURL, IDField: "id", NameField: "name", URLField: "url",
			IDKey: "cloud_id", IDsKey: "cloud_ids", URLKey: "site_url"},
	},
	QuirkXeroTenants: {
		doc: "after consent, read the organisations the token reaches from " + xeroConnectionsURL +
			"; keep `tenant_ids`, and `tenant_id` and `tenant_name` of the organisation this consent connected " +
			"(the connection whose `authEventId` is the access token's `authentication_event_id`; left out when that is not one)",
		resources: &ResourceLookup{DefaultURL: xeroConnectionsURL, IDField: "tenantId", NameField: "tenantName",
			IDKey: "tenant_id", IDsKey: "tenant_ids", NameKey: "tenant_name",
			EventField: "authEventId", EventClaim: "authentication_event_id"},
	},
}

const (
	atlassianResourcesURL = "https://api.atlassian.com/oauth/token/accessible-resources"
	xeroConnectionsURL    = "https://api.xero.com/connections"
)

// KnownQuirks lists the quirk names a profile may use.
func KnownQuirks() []string {
	out := make([]string, 0, len(quirks))
	for k := range quirks {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// DescribeQuirk is a one-line description of a quirk for documentation, or
// "" for an unknown name.
func DescribeQuirk(name string) string {
	return quirks[name].doc
}

// AuthRequest is what the broker puts into one authorization URL.
type AuthRequest struct {
	ClientID      string
	RedirectURI   string
	Scopes        []string
	State         string
	Nonce         string // empty without openid
	CodeChallenge string // S256
	// LoginHint, when set, is sent as OIDC login_hint: who the agent
	// expects to consent (package expectid).
	LoginHint string
}

// RequestScopes returns the scopes to send to the provider for the scopes a
// consent asked for, after the profile's quirks.
func (p *Profile) RequestScopes(scopes []string) []string {
	out := slices.Clone(scopes)
	for _, name := range p.Quirks {
		if q := quirks[name]; q.scopes != nil {
			out = q.scopes(out)
		}
	}
	return out
}

// ScopeSeparator is how the provider joins scopes: " " unless a quirk says
// otherwise.
func (p *Profile) ScopeSeparator() string {
	for _, name := range p.Quirks {
		if sep := quirks[name].sep; sep != "" {
			return sep
		}
	}
	return " "
}

func (p *Profile) scopeParam() string {
	for _, name := range p.Quirks {
		if sp := quirks[name].scopeParam; sp != "" {
			return sp
		}
	}
	return "scope"
}

// AuthorizationURL builds the provider's authorization URL for req, on the
// given endpoint (static or discovered). Profile auth_params come first and
// quirks after, so a quirk's required parameter cannot be lost; the
// protocol parameters come last and always win.
func (p *Profile) AuthorizationURL(endpoint string, req AuthRequest) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", err
	}
	q := u.Query()
	p.setAuthorizationParams(q, req)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// AuthorizationParams are the parameters of the authorization request for
// req: the profile's auth_params and quirks, then the protocol parameters,
// which nothing overrides. AuthorizationURL puts them in the browser's URL;
// a pushed request (RFC 9126) sends them to the provider directly.
func (p *Profile) AuthorizationParams(req AuthRequest) url.Values {
	q := url.Values{}
	p.setAuthorizationParams(q, req)
	return q
}

// setAuthorizationParams sets req's parameters in q, which may hold the
// endpoint's own query.
func (p *Profile) setAuthorizationParams(q url.Values, req AuthRequest) {
	for k, v := range p.AuthParams {
		q.Set(k, v)
	}
	for _, name := range p.Quirks {
		if qk := quirks[name]; qk.params != nil {
			qk.params(q)
		}
	}
	q.Set("response_type", "code")
	q.Set("client_id", req.ClientID)
	q.Set("redirect_uri", req.RedirectURI)
	q.Del("scope")
	param := p.scopeParam()
	if scopes := p.RequestScopes(req.Scopes); len(scopes) > 0 {
		q.Set(param, strings.Join(scopes, p.ScopeSeparator()))
	} else {
		q.Del(param)
	}
	q.Set("state", req.State)
	if p.Resource != "" {
		q.Set("resource", p.Resource)
	}
	if req.Nonce != "" {
		q.Set("nonce", req.Nonce)
	}
	q.Set("code_challenge", req.CodeChallenge)
	q.Set("code_challenge_method", "S256")
	if req.LoginHint != "" {
		q.Set("login_hint", req.LoginHint)
	}
}

// PushedAuthorizationURL is the browser's URL for a pushed request: the
// authorization endpoint with client_id and the request_uri alone
// (RFC 9126 §4).
func PushedAuthorizationURL(endpoint, clientID, requestURI string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("client_id", clientID)
	q.Set("request_uri", requestURI)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// ConfigureEndpoint adds the profile's token request headers and switches
// on the request and response handling its quirks need. The broker calls
// it on every exchange.Endpoint it builds for this provider: code
// exchange, refresh and revocation.
func (p *Profile) ConfigureEndpoint(ep *exchange.Endpoint) {
	ep.Resource = p.Resource
	ep.Audience = p.Issuer
	if len(p.TokenRequestHeaders) > 0 {
		ep.ExtraHeaders = maps.Clone(p.TokenRequestHeaders)
	}
	for _, name := range p.Quirks {
		q := quirks[name]
		if q.anyTokenType {
			ep.AcceptAnyTokenType = true
		}
		if q.tokenMember != "" {
			ep.TokenMember = q.tokenMember
		}
		if q.jsonBody {
			ep.JSONBody = true
		}
	}
}

// NormalizeTokenResponse applies the profile's quirks to a token the
// exchange client returned (after a code exchange or a refresh), before it
// is stored: it refuses a token of the wrong kind, reports quirky
// token_types as Bearer and makes the scope space-separated.
func (p *Profile) NormalizeTokenResponse(t *exchange.Token) error {
	if t == nil {
		return errors.New("provider: no token to normalise")
	}
	anyType := false
	for _, name := range p.Quirks {
		if name == QuirkSlackUserToken && strings.EqualFold(t.TokenType, "bot") {
			// The user token was missing and the top-level bot token was
			// parsed instead; storing it would give agents the app's
			// identity where they asked for the user's.
			return fmt.Errorf("%w: a bot token where a user token was expected", ErrUnexpectedToken)
		}
		anyType = anyType || quirks[name].anyTokenType
	}
	if anyType {
		// Every provider with these quirks takes its token as a bearer
		// credential; agents should not have to learn Slack's vocabulary.
		t.TokenType = "Bearer"
	}
	if p.ScopeSeparator() == "," {
		t.Scope = strings.Join(strings.FieldsFunc(t.Scope, func(r rune) bool { return r == ',' || r == ' ' }), " ")
	}
	return nil
}

// CallbackParams lists the extra callback query parameters the broker must
// keep (with the connection, for agents) besides code and state, in a fixed
// order. Empty for most providers.
func (p *Profile) CallbackParams() []string {
	var out []string
	for _, name := range p.Quirks {
		for _, c := range quirks[name].callback {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	slices.Sort(out)
	return out
}

// maxCallbackValue bounds a kept callback value; real ones (a realmId, a
// shop domain) are short.
const maxCallbackValue = 255

var (
	realmIDRE = regexp.MustCompile(`^[0-9]{1,32}$`)
	shopRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}\.myshopify\.com$`)
)

// validCallbackValue checks a kept callback value against what the
// provider documents, since agents build API calls from it: an Intuit
// realmId is a number; a Shopify shop is one *.myshopify.com host, and the
// very shop the profile's endpoints name when they name one (the user's
// browser carries the callback and could send the token elsewhere).
func (p *Profile) validCallbackValue(name, v string) bool {
	switch name {
	case "realmId":
		return realmIDRE.MatchString(v)
	case "shop":
		if !shopRE.MatchString(v) {
			return false
		}
		if u, err := url.Parse(p.AuthURL); err == nil && strings.HasSuffix(strings.ToLower(u.Hostname()), ".myshopify.com") {
			return strings.EqualFold(u.Hostname(), v)
		}
	}
	return true
}

// CallbackValues picks the parameters named by CallbackParams out of a
// callback query. A kept value comes from the browser, so anyone can put
// anything there: a value that is too long or holds anything but printable
// ASCII is an error wrapping ErrBadCallbackParam, which does not quote it.
// Absent parameters are left out of the result; nil when none are kept.
func (p *Profile) CallbackValues(q url.Values) (map[string]string, error) {
	var out map[string]string
	for _, name := range p.CallbackParams() {
		vals, ok := q[name]
		if !ok {
			continue
		}
		if len(vals) != 1 || !plausibleValue(vals[0], maxCallbackValue) || !p.validCallbackValue(name, vals[0]) {
			return nil, fmt.Errorf("%w: %s", ErrBadCallbackParam, name)
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[name] = vals[0]
	}
	return out, nil
}
