package catalog

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Placeholder kinds. Each accepts only values that cannot change the shape
// of the URL they go into: no '/', '?', '#', '@', '%', '\' or spaces, and a
// host only where the whole host is the operator's to choose.
const (
	kindGUID        = "guid"
	kindSubdomain   = "subdomain"
	kindHostname    = "hostname"
	kindBaseURL     = "base_url"
	kindPathSegment = "path_segment"
)

type kind struct {
	doc string
	// check returns the value in canonical form, or an error saying what
	// shape was expected. The error never quotes the value: it is
	// operator input and may be anything.
	check func(string) (string, error)
}

var (
	guidRE        = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	pathSegmentRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
)

var kinds = map[string]kind{
	kindGUID: {
		doc: "a GUID such as `72f988bf-86f1-41af-91ab-2d7cd011db47`",
		check: func(v string) (string, error) {
			v = strings.ToLower(v)
			if !guidRE.MatchString(v) {
				return "", errors.New("must be a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47")
			}
			return v, nil
		},
	},
	kindSubdomain: {
		doc: "one DNS label: letters, digits and `-`, no dots",
		check: func(v string) (string, error) {
			v = strings.ToLower(v)
			if !isLabel(v) {
				return "", errors.New("must be a single DNS label (letters, digits and '-', no dots), e.g. mystore for mystore.myshopify.com")
			}
			return v, nil
		},
	},
	kindHostname: {
		doc: "a DNS host name such as `login.example.com`: no scheme, port, path or `@`",
		check: func(v string) (string, error) {
			v = strings.ToLower(v)
			if !isHostname(v, 2) {
				return "", errors.New("must be a DNS host name such as login.example.com (no scheme, port, path or '@')")
			}
			return v, nil
		},
	},
	kindBaseURL: {
		doc:   "`https://host` or `https://host:port`, without a path",
		check: checkBaseURL,
	},
	kindPathSegment: {
		doc: "one path segment: letters, digits, `.`, `_` and `-`, starting with a letter or digit",
		check: func(v string) (string, error) {
			if !pathSegmentRE.MatchString(v) {
				return "", errors.New("must be letters, digits, '.', '_' or '-', starting with a letter or digit")
			}
			return v, nil
		},
	},
}

func checkBaseURL(v string) (string, error) {
	bad := errors.New("must be https://host or https://host:port, without a path, query or '@'")
	rest, ok := strings.CutPrefix(strings.ToLower(v), "https://")
	if !ok {
		return "", bad
	}
	rest = strings.TrimSuffix(rest, "/")
	host, port, hasPort := strings.Cut(rest, ":")
	if hasPort {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return "", bad
		}
	}
	if !isHostname(host, 1) && !isIPv4(host) {
		return "", bad
	}
	return "https://" + rest, nil
}

// isLabel reports whether l is one DNS label (RFC 1123, lower case).
func isLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isHostname reports whether h is a lower-case DNS name of at least
// minLabels labels whose last label is not numeric (that would be an IP).
func isHostname(h string, minLabels int) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	labels := strings.Split(h, ".")
	if len(labels) < minLabels {
		return false
	}
	for _, l := range labels {
		if !isLabel(l) {
			return false
		}
	}
	_, err := strconv.Atoi(labels[len(labels)-1])
	return err != nil
}

func isIPv4(h string) bool {
	ip := net.ParseIP(h)
	return ip != nil && ip.To4() != nil && strings.Count(h, ".") == 3
}

// urlTemplate is a template URL split where placeholders may go: either
// "https://" + authority + rest, or a base_url placeholder + rest.
type urlTemplate struct {
	base      string // the base_url placeholder starting the URL, or ""
	authority string
	rest      string // path and query
}

func splitTemplate(tmpl string, declared map[string]Placeholder) (urlTemplate, error) {
	var ut urlTemplate
	if s, ok := strings.CutPrefix(tmpl, "https://"); ok {
		i := strings.IndexAny(s, "/?#")
		if i < 0 {
			i = len(s)
		}
		ut.authority, ut.rest = s[:i], s[i:]
		if ut.authority == "" || strings.Contains(ut.authority, "@") {
			return ut, errors.New("must have a host and no userinfo")
		}
	} else {
		m := placeholderRefRE.FindStringSubmatchIndex(tmpl)
		if m == nil || m[0] != 0 || declared[tmpl[m[2]:m[3]]].Kind != kindBaseURL {
			return ut, errors.New("must start with https:// or a base_url placeholder")
		}
		ut.base, ut.rest = tmpl[m[2]:m[3]], tmpl[m[1]:]
		if ut.rest != "" && ut.rest[0] != '/' {
			return ut, errors.New("a base_url placeholder must be followed by a path")
		}
	}
	if i := strings.IndexAny(ut.rest, "?#"); i >= 0 && strings.ContainsAny(ut.rest[i:], "{}") {
		return ut, errors.New("placeholders may not appear in a query or fragment")
	}
	return ut, nil
}

// errStructure is what render reports when substituted values would change
// a URL's scheme, host, path or query. Kind validation should make it
// unreachable; it is the second line of defence.
var errStructure = errors.New("the parameter values change the URL's structure")

// render substitutes vals into tmpl and checks that the result has the
// template's shape: https, the expected host, the expected path and query,
// no userinfo or fragment.
func render(tmpl string, declared map[string]Placeholder, vals map[string]string) (string, error) {
	ut, err := splitTemplate(tmpl, declared)
	if err != nil {
		return "", err
	}
	pairs := make([]string, 0, 2*len(vals))
	for k, v := range vals {
		pairs = append(pairs, "{"+k+"}", v)
	}
	r := strings.NewReplacer(pairs...)
	out := r.Replace(tmpl)
	if placeholderRefRE.MatchString(out) {
		return "", fmt.Errorf("%w: a placeholder has no value", ErrTemplateParams)
	}
	wantHost := r.Replace(ut.authority)
	if ut.base != "" {
		wantHost = strings.TrimPrefix(vals[ut.base], "https://")
	}
	// Placeholders never sit in the query, so the template's query is
	// final; the path must come out exactly as substituted, with nothing
	// percent-encoded that a server could decode into a '/'.
	tmplPath, tmplQuery, hasQuery := strings.Cut(ut.rest, "?")
	wantPath := r.Replace(tmplPath)
	u, err := url.Parse(out)
	if err != nil || u.Scheme != "https" || u.User != nil || u.Opaque != "" || u.Fragment != "" ||
		!strings.EqualFold(u.Host, wantHost) || u.Path != wantPath || u.EscapedPath() != wantPath ||
		u.RawQuery != tmplQuery || u.ForceQuery != (hasQuery && tmplQuery == "") {
		return "", fmt.Errorf("%w: %w", ErrTemplateParams, errStructure)
	}
	return out, nil
}
