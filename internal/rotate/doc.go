// Package rotate re-seals stored ciphertexts (provider client secrets,
// PKCE verifiers, token sets, webhook secrets, device codes) under the
// primary encryption key, online and
// resumably, and counts those still under older keys.
package rotate
