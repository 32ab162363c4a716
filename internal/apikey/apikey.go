package apikey

import (
	"errors"
	"strings"
)

var (
	// ErrMissing: no credential, an Authorization header of another scheme,
	// or an empty key.
	ErrMissing = errors.New("apikey: no API key presented")
	// ErrAmbiguous: the header appears more than once, or both headers
	// carry different keys.
	ErrAmbiguous = errors.New("apikey: more than one credential presented")
)

// Presented returns the key carried by the values of the Authorization
// and X-API-Key headers (each as all its values, in order). Exactly one
// key may be presented: once, in either header, or in both with the same
// value. An Authorization header must use the Bearer scheme (in any case);
// spaces around a key are ignored.
func Presented(authorization, apiKey []string) (string, error) {
	if len(authorization) > 1 || len(apiKey) > 1 {
		return "", ErrAmbiguous
	}
	var bearer, header string
	if len(authorization) == 1 {
		scheme, rest, ok := strings.Cut(strings.TrimSpace(authorization[0]), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", ErrMissing
		}
		if bearer = strings.TrimSpace(rest); bearer == "" {
			return "", ErrMissing
		}
	}
	if len(apiKey) == 1 {
		if header = strings.TrimSpace(apiKey[0]); header == "" && bearer == "" {
			return "", ErrMissing
		}
	}
	switch {
	case bearer != "" && header != "" && bearer != header:
		return "", ErrAmbiguous
	case bearer != "":
		return bearer, nil
	case header != "":
		return header, nil
	}
	return "", ErrMissing
}
