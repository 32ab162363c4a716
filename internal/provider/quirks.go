package provider

import (
	"net/url"
	"slices"
	"strings"
)

// Named quirks a profile can switch on. Each is a small behaviour with a
// test of its own; handlers never test provider names.
const (
	// QuirkGoogleOffline: Google rejects the offline_access scope and gives
	// a refresh token only for access_type=offline, and again on later
	// consents only with prompt=consent.
	QuirkGoogleOffline = "google_offline"
	// QuirkCommaScopes: the provider separates scopes with commas (Slack v1,
	// some older APIs) instead of spaces.
	QuirkCommaScopes = "comma_scopes"
)

type quirk struct {
	scopes func([]string) []string
	params func(url.Values)
	sep    string
}

var quirks = map[string]quirk{
	QuirkGoogleOffline: {
		scopes: func(s []string) []string {
			return slices.DeleteFunc(slices.Clone(s), func(x string) bool { return x == "offline_access" })
		},
		params: func(v url.Values) {
			v.Set("access_type", "offline")
			v.Set("prompt", "consent")
		},
	},
	QuirkCommaScopes: {sep: ","},
}

// KnownQuirks lists the quirk names a profile may use.
func KnownQuirks() []string {
	out := make([]string, 0, len(quirks))
	for k := range quirks {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// AuthRequest is what the broker puts into one authorization URL.
type AuthRequest struct {
	ClientID      string
	RedirectURI   string
	Scopes        []string
	State         string
	Nonce         string // empty without openid
	CodeChallenge string // S256
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
	for k, v := range p.AuthParams {
		q.Set(k, v)
	}
	sep := " "
	for _, name := range p.Quirks {
		qk := quirks[name]
		if qk.params != nil {
			qk.params(q)
		}
		if qk.sep != "" {
			sep = qk.sep
		}
	}
	q.Set("response_type", "code")
	q.Set("client_id", req.ClientID)
	q.Set("redirect_uri", req.RedirectURI)
	if scopes := p.RequestScopes(req.Scopes); len(scopes) > 0 {
		q.Set("scope", strings.Join(scopes, sep))
	} else {
		q.Del("scope")
	}
	q.Set("state", req.State)
	if req.Nonce != "" {
		q.Set("nonce", req.Nonce)
	}
	q.Set("code_challenge", req.CodeChallenge)
	q.Set("code_challenge_method", "S256")
	u.RawQuery = q.Encode()
	return u.String(), nil
}
