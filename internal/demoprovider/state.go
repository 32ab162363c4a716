package demoprovider

import (
	"crypto/sha256"
	"time"
)

// secretKey is the map key for codes and refresh tokens: a digest, so map
// lookups do not compare the secret itself byte by byte.
type secretKey [sha256.Size]byte

func keyOf(secret string) secretKey { return sha256.Sum256([]byte(secret)) }

// authRequest is a validated authorization request.
type authRequest struct {
	redirectURI   string
	state         string
	nonce         string
	codeChallenge string
	scopes        []string
}

// pendingConsent waits for the person to approve or deny.
type pendingConsent struct {
	req       authRequest
	expiresAt time.Time
}

// codeGrant is an issued authorization code. After redemption it is kept a
// while, marked used, so a replay can find and revoke what it produced.
type codeGrant struct {
	req       authRequest
	username  string
	authTime  time.Time
	expiresAt time.Time
	used      bool
	// Set on successful redemption.
	accessJTI string
	accessExp time.Time
	familyID  string
}

// refreshFamily is every refresh token descended from one code redemption;
// a replayed member revokes the lot (OAuth 2.0 Security BCP 4.14.2).
type refreshFamily struct {
	username  string
	scopes    []string
	authTime  time.Time
	revoked   bool
	expiresAt time.Time
	// accessTokens maps the jti of each access token minted for the family
	// to its expiry, so revoking the family revokes them too.
	accessTokens map[string]time.Time
}

type refreshEntry struct {
	familyID  string
	expiresAt time.Time
	rotated   bool
}

// grantState is guarded by Provider.mu.
type grantState struct {
	pending  map[string]*pendingConsent
	codes    map[secretKey]*codeGrant
	families map[string]*refreshFamily
	refresh  map[secretKey]*refreshEntry
	// revokedJTIs holds revoked access token ids until the token would have
	// expired anyway.
	revokedJTIs map[string]time.Time
	lastPrune   time.Time
}

func newGrantState() grantState {
	return grantState{
		pending:     make(map[string]*pendingConsent),
		codes:       make(map[secretKey]*codeGrant),
		families:    make(map[string]*refreshFamily),
		refresh:     make(map[secretKey]*refreshEntry),
		revokedJTIs: make(map[string]time.Time),
	}
}

// prune drops expired entries, at most once per pruneInterval.
func (s *grantState) prune(now time.Time) {
	if now.Sub(s.lastPrune) < pruneInterval {
		return
	}
	s.lastPrune = now
	for id, pc := range s.pending {
		if !now.Before(pc.expiresAt) {
			delete(s.pending, id)
		}
	}
	for k, g := range s.codes {
		if !now.Before(g.expiresAt) {
			delete(s.codes, k)
		}
	}
	for k, e := range s.refresh {
		if !now.Before(e.expiresAt) {
			delete(s.refresh, k)
		}
	}
	for id, f := range s.families {
		if !now.Before(f.expiresAt) {
			delete(s.families, id)
			continue
		}
		for jti, exp := range f.accessTokens {
			if !now.Before(exp) {
				delete(f.accessTokens, jti)
			}
		}
	}
	for jti, exp := range s.revokedJTIs {
		if !now.Before(exp) {
			delete(s.revokedJTIs, jti)
		}
	}
}

// revokeFamily marks the family dead and revokes its live access tokens.
func (s *grantState) revokeFamily(id string) {
	f := s.families[id]
	if f == nil {
		return
	}
	f.revoked = true
	for jti, exp := range f.accessTokens {
		s.revokedJTIs[jti] = exp
	}
}

// revokeCode revokes everything a redeemed code produced.
func (s *grantState) revokeCode(g *codeGrant) {
	if g.accessJTI != "" {
		s.revokedJTIs[g.accessJTI] = g.accessExp
	}
	if g.familyID != "" {
		s.revokeFamily(g.familyID)
	}
}

func (s *grantState) isRevoked(jti string) bool {
	_, ok := s.revokedJTIs[jti]
	return ok
}
