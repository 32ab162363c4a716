package demoprovider

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// errInvalidToken covers every reason an access token is refused; callers
// get no more detail than RFC 6750's invalid_token.
var errInvalidToken = errors.New("demoprovider: invalid access token")

// accessTokenType is the JWT "typ" of access tokens (RFC 9068 2.1). It keeps
// an ID token from being accepted where an access token is expected.
const accessTokenType = "at+jwt"

// signer holds the RS256 key and the JWKS derived from it.
type signer struct {
	kid    string
	pub    *rsa.PublicKey
	jwks   []byte
	access jose.Signer
	id     jose.Signer
}

func newSigner(key *rsa.PrivateKey) (*signer, error) {
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("%w: SigningKey: %w", ErrInvalidOptions, err)
	}
	if key.N.BitLen() < 2048 {
		return nil, fmt.Errorf("%w: SigningKey is shorter than 2048 bits", ErrInvalidOptions)
	}
	pub := jose.JSONWebKey{Key: &key.PublicKey, Algorithm: string(jose.RS256), Use: "sig"}
	// The RFC 7638 thumbprint changes exactly when the key does, so a
	// replaced key never shares a kid with the old one in a cached JWKS.
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("demoprovider: key thumbprint: %w", err)
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	if err != nil {
		return nil, fmt.Errorf("demoprovider: marshal JWKS: %w", err)
	}
	signingKey := jose.SigningKey{
		Algorithm: jose.RS256,
		Key:       jose.JSONWebKey{Key: key, KeyID: pub.KeyID},
	}
	access, err := jose.NewSigner(signingKey, (&jose.SignerOptions{}).WithType(accessTokenType))
	if err != nil {
		return nil, fmt.Errorf("demoprovider: access token signer: %w", err)
	}
	id, err := jose.NewSigner(signingKey, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("demoprovider: ID token signer: %w", err)
	}
	return &signer{kid: pub.KeyID, pub: &key.PublicKey, jwks: jwks, access: access, id: id}, nil
}

func sign(s jose.Signer, claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("demoprovider: marshal claims: %w", err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("demoprovider: sign: %w", err)
	}
	return obj.CompactSerialize()
}

// accessClaims are the claims of an access token. They carry everything
// userinfo needs, so a token stays usable across a restart.
type accessClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	ClientID string `json:"client_id"`
	Expiry   int64  `json:"exp"`
	IssuedAt int64  `json:"iat"`
	JWTID    string `json:"jti"`
	Scope    string `json:"scope"`
	AuthTime int64  `json:"auth_time"`
	Username string `json:"preferred_username"`
}

// idClaims are the claims of an ID token (OIDC Core 2).
type idClaims struct {
	Issuer            string `json:"iss"`
	Subject           string `json:"sub"`
	Audience          string `json:"aud"`
	Expiry            int64  `json:"exp"`
	IssuedAt          int64  `json:"iat"`
	AuthTime          int64  `json:"auth_time"`
	Nonce             string `json:"nonce,omitempty"`
	AccessTokenHash   string `json:"at_hash,omitempty"`
	Email             string `json:"email,omitempty"`
	EmailVerified     *bool  `json:"email_verified,omitempty"`
	Name              string `json:"name,omitempty"`
	PreferredUsername string `json:"preferred_username,omitempty"`
}

// accessTokenHash is at_hash (OIDC Core 3.1.3.6): the left half of the
// SHA-256 of the token's ASCII, base64url-encoded.
func accessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// verifyAccess checks an access token's signature, type, issuer, audience
// and expiry at unix time now. Revocation is the caller's business.
func (p *Provider) verifyAccess(token string, now int64) (accessClaims, error) {
	var c accessClaims
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(jws.Signatures) != 1 {
		return c, errInvalidToken
	}
	h := jws.Signatures[0].Protected
	if h.KeyID != p.keys.kid || h.ExtraHeaders[jose.HeaderType] != accessTokenType {
		return c, errInvalidToken
	}
	payload, err := jws.Verify(p.keys.pub)
	if err != nil {
		return c, errInvalidToken
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return c, errInvalidToken
	}
	if c.Issuer != p.issuer || c.Audience != p.clientID || c.JWTID == "" || c.Subject == "" {
		return c, errInvalidToken
	}
	if now >= c.Expiry {
		return c, errInvalidToken
	}
	return c, nil
}
