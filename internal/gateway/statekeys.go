package gateway

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/dromos-dev/dromos/internal/state"
)

// stateVerifier builds the gateway's state verifier from public keys. A
// gateway given the broker's STATE_KEY keeps only the public keys derived
// from it and says what to configure instead: holding the seed would let
// it mint states.
func stateVerifier(cfg Config, now func() time.Time, log *slog.Logger) (*state.Verifier, error) {
	pubs := cfg.StatePublicKeys
	if len(pubs) == 0 {
		var err error
		if pubs, err = state.PublicKeys(cfg.StateKeys); err != nil {
			return nil, fmt.Errorf("gateway: STATE_KEY: %w", err)
		}
		log.Warn("the gateway was given STATE_KEY, which can sign states; give it only the public keys",
			"STATE_PUBLIC_KEYS", state.FormatPublicKeys(pubs))
	}
	v, err := state.NewVerifier(pubs, state.Options{Now: now})
	if err != nil {
		return nil, fmt.Errorf("gateway: STATE_PUBLIC_KEYS: %w", err)
	}
	return v, nil
}
