package credential

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Types of credential.
const (
	TypeAPIKey = "api_key"
	TypeBasic  = "basic"
)

// Injection says how an agent sends an API key: in header Header, as
// ValuePrefix followed by the key ("Authorization: Bearer sk-…",
// "X-Api-Key: …"). Basic credentials always go in Authorization.
type Injection struct {
	Header      string `json:"header,omitempty"`
	ValuePrefix string `json:"value_prefix,omitempty"`
}

// Verification is one request the broker sends with a newly submitted
// credential (injected as the agent would send it) before it accepts it.
// The credential is refused when the answer's status is not in
// ExpectStatus.
type Verification struct {
	Method string `json:"method,omitempty"` // GET (default), HEAD or POST
	URL    string `json:"url"`
	// ExpectStatus lists the statuses that accept the credential; empty
	// means 200.
	ExpectStatus []int `json:"expect_status,omitempty"`
	// Headers go with the request (an API version header); they are
	// stored in the clear, so not a place for secrets.
	Headers map[string]string `json:"headers,omitempty"`
}

// Spec is the credential part of a provider profile with auth_mode
// api_key or basic.
type Spec struct {
	Injection Injection     `json:"injection,omitzero"`
	Verify    *Verification `json:"verify,omitempty"`
}

// DefaultHeader carries the credential when the profile names none.
const DefaultHeader = "Authorization"

// maxPrefix bounds value_prefix: "Bearer ", "Token ", "Key ".
const maxPrefix = 32

// Normalize canonicalises header names and fills defaults.
func (s *Spec) Normalize(typ string) {
	s.Injection.Header = strings.TrimSpace(s.Injection.Header)
	if s.Injection.Header == "" && typ == TypeAPIKey {
		s.Injection.Header = DefaultHeader
	}
	if s.Injection.Header != "" {
		s.Injection.Header = http.CanonicalHeaderKey(s.Injection.Header)
	}
	if v := s.Verify; v != nil {
		v.Method = strings.ToUpper(strings.TrimSpace(v.Method))
		if v.Method == "" {
			v.Method = http.MethodGet
		}
		v.URL = strings.TrimSpace(v.URL)
		if len(v.ExpectStatus) == 0 {
			v.ExpectStatus = []int{http.StatusOK}
		}
		if len(v.Headers) > 0 {
			h := make(map[string]string, len(v.Headers))
			for k, val := range v.Headers {
				h[http.CanonicalHeaderKey(strings.TrimSpace(k))] = val
			}
			if len(h) == len(v.Headers) {
				v.Headers = h // a name given twice is left for Problems to report
			}
		}
	}
}

// reservedHeaders are set by the credential itself or by net/http; a
// profile may neither inject the key into them (but Authorization) nor
// send them with the verification request.
var reservedHeaders = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Host": true, "Transfer-Encoding": true,
	"Connection": true, "Cookie": true, "User-Agent": true, "Accept-Encoding": true,
}

// Problems lists every rule s breaks for a credential of type typ.
func (s Spec) Problems(typ string) []string {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	in := s.Injection
	switch typ {
	case TypeAPIKey:
		if !httpguts.ValidHeaderFieldName(in.Header) || reservedHeaders[http.CanonicalHeaderKey(in.Header)] {
			add("credential.injection.header must be a header name the broker does not set itself (default Authorization)")
		}
		if len(in.ValuePrefix) > maxPrefix || !httpguts.ValidHeaderFieldValue(in.ValuePrefix) || strings.TrimLeft(in.ValuePrefix, " \t") != in.ValuePrefix {
			add("credential.injection.value_prefix must be at most %d printable characters, not starting with a space", maxPrefix)
		}
	case TypeBasic:
		if (in.Header != "" && in.Header != DefaultHeader) || in.ValuePrefix != "" {
			add("credential.injection is fixed for basic credentials (Authorization: Basic …); leave it empty")
		}
	default:
		add("credential is only for auth_mode api_key or basic")
	}
	if v := s.Verify; v != nil {
		switch v.Method {
		case http.MethodGet, http.MethodHead, http.MethodPost:
		default:
			add("credential.verify.method must be GET, HEAD or POST")
		}
		if err := checkURL(v.URL); err != nil {
			add("credential.verify.url %v", err)
		}
		if len(v.ExpectStatus) > 8 {
			add("credential.verify.expect_status holds at most 8 statuses")
		}
		for _, st := range v.ExpectStatus {
			if st < 200 || st > 299 {
				add("credential.verify.expect_status may only hold 2xx statuses, not %d", st)
				break
			}
		}
		if len(v.Headers) > 8 {
			add("credential.verify.headers holds at most 8 headers")
		}
		seen := map[string]bool{}
		for _, k := range slices.Sorted(maps.Keys(v.Headers)) {
			c := http.CanonicalHeaderKey(k)
			val := v.Headers[k]
			switch {
			case seen[c]:
				add("credential.verify.headers names %s twice", c)
			case !httpguts.ValidHeaderFieldName(k):
				add("credential.verify.headers: %q is not a valid header name", k)
			case reservedHeaders[c] || c == DefaultHeader || c == in.Header:
				add("credential.verify.headers may not set %s", c)
			case val == "" || len(val) > 256 || !httpguts.ValidHeaderFieldValue(val):
				add("credential.verify.headers: the value of %s must be 1-256 printable characters", c)
			}
			seen[c] = true
		}
	}
	return probs
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "" || err != nil:
		return fmt.Errorf("is required and must be a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("must be an http(s) URL")
	case u.Host == "":
		return fmt.Errorf("must be an absolute URL")
	case u.User != nil:
		return fmt.Errorf("must not contain credentials")
	case u.Fragment != "":
		return fmt.Errorf("must not contain a fragment")
	}
	return nil
}
