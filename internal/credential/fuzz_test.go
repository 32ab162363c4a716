package credential

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// FuzzParse feeds Parse what an agent or the hosted form may submit: any
// accepted credential must be injectable as one well-formed header, and no
// error may quote a submitted value.
func FuzzParse(f *testing.F) {
	f.Add("api_key", "sk-123", "", "")
	f.Add("basic", "", "AC1", "pw")
	f.Add("api_key", "sk\r\nX-Evil: 1", "", "")
	f.Add("basic", "", "a:b", "pw")
	f.Add("api_key", " padded ", "", "")
	f.Fuzz(func(t *testing.T, typ, key, user, pass string) {
		in := map[string]string{}
		for k, v := range map[string]string{"api_key": key, "username": user, "password": pass} {
			if v != "" {
				in[k] = v
			}
		}
		spec := Spec{Injection: Injection{ValuePrefix: "Bearer "}}
		spec.Normalize(typ)
		c, err := Parse(typ, spec, in)
		if err != nil {
			if !errors.Is(err, ErrInput) {
				t.Fatalf("error not wrapping ErrInput: %v", err)
			}
			for _, v := range in {
				if len(v) >= 6 && strings.Contains(err.Error(), v) {
					t.Fatalf("error %q quotes a submitted value", err)
				}
			}
			return
		}
		h := http.Header{}
		c.Apply(h)
		if len(h) != 1 || h.Get(c.Header) == "" || strings.ContainsAny(h.Get(c.Header), "\r\n") {
			t.Fatalf("accepted credential injects %q", h)
		}
		// Short secrets are left out: "A" occurs in the redacted text itself.
		if s := c.String(); (len(c.Value) >= 6 && strings.Contains(s, c.Value)) || (len(c.Password) >= 6 && strings.Contains(s, c.Password)) {
			t.Fatalf("String shows the secret: %s", s)
		}
	})
}
