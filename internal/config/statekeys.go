package config

import "github.com/dromos-dev/dromos/internal/state"

// StateKeys reads STATE_KEYS or STATE_KEY alone, for commands that derive
// the gateway's public keys from them.
func StateKeys(env Env) ([]state.Key, error) {
	var probs Problems
	r := reader{env: env, errs: &probs}
	keys := toStateKeys(r.requiredIDKeys("STATE_KEYS", "STATE_KEY", "the broker's state key"))
	return keys, probs.err()
}

// StatePublicKeys is the gateway's STATE_PUBLIC_KEYS value for the state
// keys in env (STATE_KEYS or STATE_KEY).
func StatePublicKeys(env Env) (string, error) {
	keys, err := StateKeys(env)
	if err != nil {
		return "", err
	}
	pubs, err := state.PublicKeys(keys)
	if err != nil {
		return "", err
	}
	return state.FormatPublicKeys(pubs), nil
}
