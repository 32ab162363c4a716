package demoprovider

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// DefaultUsername is the demo user the consent page proposes.
const DefaultUsername = "demo"

// EmailDomain is the domain of every demo user's e-mail address; it is
// reserved for this provider and receives no mail.
const EmailDomain = "demo.dromos.local"

const maxUsernameLen = 64

// normalizeUsername lower-cases a username and reports whether it is
// acceptable: 1–64 characters of a–z, 0–9, '.', '_' or '-', starting with a
// letter or digit, so it is also a valid e-mail local part.
func normalizeUsername(raw string) (string, bool) {
	u := strings.ToLower(strings.TrimSpace(raw))
	if u == "" || len(u) > maxUsernameLen {
		return "", false
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		alnum := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		if !alnum && (i == 0 || (c != '.' && c != '_' && c != '-')) {
			return "", false
		}
	}
	return u, true
}

// Subject returns the stable, opaque sub claim of the demo user with the
// given (normalised) username. Real providers do not put names in sub;
// neither does this one, so the broker cannot come to rely on it.
func Subject(username string) string {
	sum := sha256.Sum256([]byte("dromos-demo-user\x00" + username))
	return hex.EncodeToString(sum[:16])
}

func emailOf(username string) string { return username + "@" + EmailDomain }

func displayName(username string) string { return "Demo user " + username }
