package broker

import (
	"context"

	"github.com/dromos-dev/dromos/internal/expectid"
	"github.com/dromos-dev/dromos/internal/storage"
)

// checkExpectedIdentity refuses an account other than the one the agent
// named (package expectid): "identity_mismatch", or "" when it matches or
// nothing was named. Without a verified id_token nothing proves the
// account, which is a mismatch too.
func (b *Broker) checkExpectedIdentity(ctx context.Context, conn storage.Connection, claims *idClaims) string {
	want, err := expectid.Decode(conn.ExpectedIdentity)
	if err != nil {
		b.log.ErrorContext(ctx, "callback: reading the expected identity", "connection_id", conn.ID, "err", err)
		return "server_error"
	}
	if want.IsZero() {
		return ""
	}
	if claims == nil || !want.Matches(claims.Subject, claims.Email) {
		b.log.WarnContext(ctx, "consent refused: not the account the agent expected", "connection_id", conn.ID)
		return "identity_mismatch"
	}
	return ""
}

// loginHint is the login_hint of the connection's authorization request:
// the e-mail the agent expects, or "".
func loginHint(conn storage.Connection) string {
	want, err := expectid.Decode(conn.ExpectedIdentity)
	if err != nil {
		return ""
	}
	return want.LoginHint()
}
