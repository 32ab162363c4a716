package expectid

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Identity is who should consent. Zero fields are not checked; at least
// one is set for an Identity to mean anything.
type Identity struct {
	// Email must equal the id_token's verified e-mail, compared without
	// regard to case.
	Email string `json:"email,omitempty"`
	// EmailDomain must equal the domain of the verified e-mail, compared
	// without regard to case.
	EmailDomain string `json:"email_domain,omitempty"`
	// Sub must equal the id_token's sub exactly.
	Sub string `json:"sub,omitempty"`
}

const maxLen = 256

// IsZero reports whether no identity is expected.
func (e Identity) IsZero() bool { return e == Identity{} }

// Validate says what is wrong with e.
func (e Identity) Validate() error {
	if e.IsZero() {
		return errors.New("expected_identity needs email, email_domain or sub")
	}
	for name, v := range map[string]string{"email": e.Email, "email_domain": e.EmailDomain, "sub": e.Sub} {
		if len(v) > maxLen {
			return fmt.Errorf("expected_identity.%s is at most %d characters", name, maxLen)
		}
		for _, r := range v {
			if r < 0x21 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
				return fmt.Errorf("expected_identity.%s holds a space or control character", name)
			}
		}
	}
	if e.Email != "" {
		local, domain, ok := strings.Cut(e.Email, "@")
		if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
			return errors.New("expected_identity.email is not an e-mail address")
		}
	}
	if e.EmailDomain != "" && (strings.Contains(e.EmailDomain, "@") || !strings.Contains(e.EmailDomain, ".") && e.EmailDomain != "localhost") {
		return errors.New("expected_identity.email_domain is a domain name such as example.com")
	}
	return nil
}

// Matches reports whether a verified identity (sub, and the e-mail the
// broker kept: only a verified one, "" otherwise) is the expected one. An
// expected e-mail or domain never matches an account without a verified
// e-mail.
func (e Identity) Matches(sub, verifiedEmail string) bool {
	if e.Sub != "" && e.Sub != sub {
		return false
	}
	if e.Email != "" && (verifiedEmail == "" || !strings.EqualFold(e.Email, verifiedEmail)) {
		return false
	}
	if e.EmailDomain != "" {
		_, domain, ok := strings.Cut(verifiedEmail, "@")
		if !ok || !strings.EqualFold(domain, e.EmailDomain) {
			return false
		}
	}
	return true
}

// LoginHint is what the authorization request carries as login_hint (the
// e-mail, the one form providers generally accept), or "".
func (e Identity) LoginHint() string { return e.Email }

// Encode is the stored form ("" for none).
func (e Identity) Encode() string {
	if e.IsZero() {
		return ""
	}
	b, _ := json.Marshal(e)
	return string(b)
}

// Decode reads the stored form; "" is no expectation.
func Decode(s string) (Identity, error) {
	var e Identity
	if s == "" {
		return e, nil
	}
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		return Identity{}, fmt.Errorf("expectid: stored identity: %w", err)
	}
	return e, nil
}
