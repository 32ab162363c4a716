package exchange

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// AuthPrivateKeyJWT authenticates with a JWT the client signs with its
// private key (RFC 7523 §2.2, OpenID Connect private_key_jwt). The
// Endpoint's ClientSecret holds the PEM private key.
const AuthPrivateKeyJWT AuthMethod = "private_key_jwt"

// assertionType is RFC 7523's client_assertion_type.
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime is how long a client assertion is valid: one request.
const assertionLifetime = 60 * time.Second

// parsePrivateKey reads a PKCS #8, SEC 1 or PKCS #1 PEM private key and
// picks the JWS algorithm that goes with it.
func parsePrivateKey(pemKey string) (crypto.Signer, jose.SignatureAlgorithm, error) {
	blk, _ := pem.Decode([]byte(pemKey))
	if blk == nil {
		return nil, "", errors.New("private key is not PEM")
	}
	var key any
	var err error
	if key, err = x509.ParsePKCS8PrivateKey(blk.Bytes); err != nil {
		if key, err = x509.ParseECPrivateKey(blk.Bytes); err != nil {
			if key, err = x509.ParsePKCS1PrivateKey(blk.Bytes); err != nil {
				return nil, "", errors.New("private key is not PKCS #8, SEC 1 or PKCS #1")
			}
		}
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve.Params().BitSize {
		case 256:
			return k, jose.ES256, nil
		case 384:
			return k, jose.ES384, nil
		case 521:
			return k, jose.ES512, nil
		}
	case *rsa.PrivateKey:
		return k, jose.RS256, nil
	case ed25519.PrivateKey:
		return k, jose.EdDSA, nil
	}
	return nil, "", errors.New("unsupported private key type")
}

// clientAssertion signs the JWT of RFC 7523 §3: issuer and subject the
// client id, audience the authorization server (ep.Audience, else the
// token URL), a short lifetime and a unique id.
func clientAssertion(ep Endpoint, now time.Time) (string, error) {
	key, alg, err := parsePrivateKey(ep.ClientSecret.Reveal())
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("%w: cannot sign the client assertion", ErrInvalidInput)
	}
	aud := ep.Audience
	if aud == "" {
		aud = ep.TokenURL
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	claims := jwt.Claims{Issuer: ep.ClientID, Subject: ep.ClientID, Audience: jwt.Audience{aud},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Second)),
		Expiry: jwt.NewNumericDate(now.Add(assertionLifetime)), ID: base64.RawURLEncoding.EncodeToString(jti)}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// ClientCredentials asks for a token for the client itself (RFC 6749
// §4.4): no user, no refresh token expected. scopes, when not empty, are
// requested.
func (c *Client) ClientCredentials(ctx context.Context, ep Endpoint, scopes []string) (*Token, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	return c.tokenCall(ctx, "client_credentials", ep, form)
}
