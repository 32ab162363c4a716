package broker

import (
	"context"
	"errors"

	"github.com/dromos-dev/dromos/internal/idtoken"
	"github.com/dromos-dev/dromos/internal/registry"
	"github.com/dromos-dev/dromos/internal/storage"
)

type idClaims struct {
	Issuer, Subject, Email string
}

// verifyIDToken checks the id_token before anything is stored: an openid
// consent without one, or one that fails any check, fails the connection.
func (b *Broker) verifyIDToken(ctx context.Context, conn storage.Connection, prov registry.Provider, ends registry.Endpoints, raw string) (*idClaims, string) {
	log := b.log.With("connection_id", conn.ID, "provider", prov.Row.Name)
	if raw == "" {
		log.WarnContext(ctx, "id_token verification failed", "check", "missing")
		return nil, "invalid_id_token"
	}
	if ends.Issuer == "" || ends.JWKS == "" {
		log.WarnContext(ctx, "id_token verification failed", "check", "configuration",
			"hint", "the provider needs issuer and jwks_url (or discovery) to verify id_tokens")
		return nil, "invalid_id_token"
	}
	claims, err := b.idt.Verify(ctx, raw, idtoken.Expect{Issuer: ends.Issuer, ClientID: prov.Profile.ClientID, TrustedAudiences: prov.Profile.TrustedAudiences,
		JWKSURL: ends.JWKS, Nonce: conn.Nonce})
	if err != nil {
		check := "unknown"
		var ve *idtoken.Error
		if errors.As(err, &ve) {
			check = ve.Check
		}
		log.WarnContext(ctx, "id_token verification failed", "check", check, "err", err)
		return nil, "invalid_id_token"
	}
	// An address the provider does not vouch for (email_verified false or
	// absent) is not recorded: anyone can type one into their profile, and
	// operators check it to see whose account a connection holds.
	email := ""
	if claims.EmailVerified {
		email = claims.Email
	}
	return &idClaims{Issuer: claims.Issuer, Subject: claims.Subject, Email: email}, ""
}
