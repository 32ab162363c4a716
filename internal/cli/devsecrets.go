package cli

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dromos-dev/dromos/internal/secret"
)

// devSecrets are the keys dromos dev generates on first run and reuses, so
// connections and tokens survive a restart.
type devSecrets struct {
	EncryptionKey    string `json:"encryption_key"`
	StateKey         string `json:"state_key"`
	DemoClientSecret string `json:"demo_client_secret"`
	DemoSigningKey   string `json:"demo_signing_key_pem"`
}

const devSecretsFile = "secrets.json"

// loadDevSecrets reads dir/secrets.json, creating it (mode 0600) with fresh
// keys when it does not exist.
func loadDevSecrets(dir string) (devSecrets, *rsa.PrivateKey, bool, error) {
	path := filepath.Join(dir, devSecretsFile)
	var s devSecrets
	raw, err := os.ReadFile(path)
	created := false
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if s, err = newDevSecrets(); err != nil {
			return s, nil, false, err
		}
		out, _ := json.MarshalIndent(s, "", "  ")
		if err := os.WriteFile(path, out, 0o600); err != nil {
			return s, nil, false, fmt.Errorf("writing %s: %w", path, err)
		}
		created = true
	case err != nil:
		return s, nil, false, fmt.Errorf("reading %s: %w", path, err)
	default:
		if err := json.Unmarshal(raw, &s); err != nil {
			return s, nil, false, fmt.Errorf("%s is corrupt (delete the data folder to start afresh): %w", path, err)
		}
	}
	block, _ := pem.Decode([]byte(s.DemoSigningKey))
	if block == nil {
		return s, nil, false, fmt.Errorf("%s: demo signing key is not PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	rsaKey, ok := k.(*rsa.PrivateKey)
	if err != nil || !ok {
		return s, nil, false, fmt.Errorf("%s: demo signing key is not an RSA key", path)
	}
	return s, rsaKey, created, nil
}

func newDevSecrets() (devSecrets, error) {
	rnd := func() (string, error) {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(b[:]), nil
	}
	var s devSecrets
	var err error
	if s.EncryptionKey, err = rnd(); err != nil {
		return s, err
	}
	if s.StateKey, err = rnd(); err != nil {
		return s, err
	}
	if s.DemoClientSecret, err = rnd(); err != nil {
		return s, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return s, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return s, err
	}
	s.DemoSigningKey = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	return s, nil
}

func secretString(s string) secret.String { return secret.String(s) }
