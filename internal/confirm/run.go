package confirm

import (
	"context"
	"errors"

	"github.com/dromos-dev/dromos/internal/storage"
)

// Result is what Run did.
type Result struct {
	// Conn is the connection after the step (as it was when nothing
	// changed).
	Conn    storage.Connection
	Outcome Outcome
	// Erased is the token row a failed step erased: the caller revokes
	// its grant at the provider. Nil otherwise.
	Erased *storage.Token
}

// errUnchanged makes UpdateConnection write nothing for Refused and Over.
var errUnchanged = errors.New("confirm: nothing to write")

// Run applies step to the connection in one row-locked read-check-write:
// of concurrent presentations of one value, exactly one sees it valid. A
// failed step erases the token in the same transaction.
func Run(ctx context.Context, store storage.Storage, id string, step func(storage.Connection) (storage.Connection, Outcome)) (Result, error) {
	var res Result
	conn, err := store.UpdateConnection(ctx, id, func(c storage.Connection, tok *storage.Token) (storage.Connection, storage.TokenChange, error) {
		res = Result{}
		next, out := step(c)
		res.Outcome, res.Conn = out, c
		switch out {
		case Advanced:
			return next, storage.TokenChange{}, nil
		case Failed:
			if tok != nil {
				t := *tok
				res.Erased = &t
			}
			return next, storage.TokenChange{Delete: true}, nil
		default:
			return c, storage.TokenChange{}, errUnchanged
		}
	})
	switch {
	case errors.Is(err, errUnchanged):
		return res, nil
	case err != nil:
		return Result{}, err
	}
	res.Conn = conn
	return res, nil
}
