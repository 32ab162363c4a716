package confirm

import (
	"context"
	"fmt"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

// Sweep fails up to limit confirmations that lapsed by now without anyone
// presenting a value, so a grant nobody confirms is revoked within a
// worker interval of its lapse instead of waiting, sealed, for the next
// read. Each connection is claimed (storage.UpdateLapsedConfirmations):
// concurrent sweeps, from any replica, fail it once. Every Result is
// Failed with reason Expired; the caller revokes each Erased grant at the
// provider and records the failure, for the Results returned with an
// error too (they were written).
func Sweep(ctx context.Context, store storage.Storage, now time.Time, limit int) ([]Result, error) {
	erased := map[string]*storage.Token{}
	conns, err := store.UpdateLapsedConfirmations(ctx, now, limit, func(c storage.Connection, tok *storage.Token) (storage.Connection, storage.TokenChange, error) {
		next, out := Lapse(c, now)
		if out != Failed {
			// The backend's claim re-checks exactly this: a row it gives
			// is lapsed.
			return c, storage.TokenChange{}, fmt.Errorf("confirm: sweep got connection %s, which has not lapsed (%s)", c.ID, c.Status)
		}
		if tok != nil {
			t := *tok
			erased[c.ID] = &t
		} else {
			delete(erased, c.ID)
		}
		return next, storage.TokenChange{Delete: true}, nil
	})
	res := make([]Result, 0, len(conns))
	for _, c := range conns {
		res = append(res, Result{Conn: c, Outcome: Failed, Erased: erased[c.ID]})
	}
	return res, err
}
