package broker

import (
	"context"

	"github.com/dromos-dev/dromos/internal/rotate"
)

// RotateStats counts what a rotation pass found and re-sealed.
type RotateStats = rotate.Stats

// RotateKeys re-seals every ciphertext (client secrets, PKCE verifiers,
// tokens) that is not under the primary encryption key, online and
// resumably (see internal/rotate). progress, if set, is called after each
// batch.
func (b *Broker) RotateKeys(ctx context.Context, batch int, progress func(RotateStats)) (RotateStats, error) {
	st, err := rotate.Keys(ctx, b.store, b.vault, batch, progress)
	if err == nil {
		b.m.oldKeyRows.Set(float64(st.OnOldKeys))
	}
	return st, err
}

// KeyUsage counts ciphertexts not under the primary key.
func (b *Broker) KeyUsage(ctx context.Context) (int, error) {
	return rotate.Usage(ctx, b.store, b.vault)
}
