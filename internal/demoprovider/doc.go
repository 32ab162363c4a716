// Package demoprovider is the small, real OpenID Provider that `dromos dev`
// serves so a newcomer gets a working connection without registering an app
// anywhere. It speaks the same protocols as Google or Entra — OAuth 2.0
// (RFC 6749) authorization code grant with mandatory PKCE S256 (RFC 7636),
// OpenID Connect Core and Discovery, token revocation (RFC 7009) and the iss
// authorization response parameter (RFC 9207) — so the broker exercises its
// production code paths against it.
//
// It owns: the discovery document, the JWKS, the authorization endpoint and
// its consent page, the token endpoint (code exchange and rotating refresh
// tokens with reuse detection), userinfo and revocation. It knows exactly one
// client, given in Options, and signs in as a made-up user whose name the
// consent page lets you choose.
//
// State (pending consents, codes, refresh token families, revoked access
// token ids) lives in memory. Access tokens are self-contained RS256 JWTs,
// so they stay valid across a restart when the caller persists and reuses
// the SigningKey. With Options.StateFile the refresh state (families,
// SHA-256 digests of refresh tokens, revoked access token ids) is also kept
// in a file, so refresh tokens and reuse detection survive a restart too;
// pending consents and codes never do, they live a minute or so.
//
// It MUST NOT be exposed as a production identity provider: anyone who can
// reach the consent page can sign in as any demo user.
package demoprovider
