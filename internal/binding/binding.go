package binding

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/storage"
)

// Versions of a client secret's additional data
// (storage.Provider.SecretAADVersion).
const (
	// LegacyVersion binds the secret to the provider id only; rows written
	// before the binding carry it (0 reads as 1).
	LegacyVersion = 1
	// Version also binds the digest of the provider's security-relevant
	// fields.
	Version = 2
)

// LegacySecretAAD is the additional data of a client secret sealed before
// the binding.
func LegacySecretAAD(providerID string) []byte { return []byte("provider-secret:" + providerID) }

// SecretAAD is the current additional data of row's client secret: its id
// and the digest of its security-relevant fields.
func SecretAAD(row storage.Provider) ([]byte, error) {
	d, err := Digest(row)
	if err != nil {
		return nil, err
	}
	out := append([]byte("provider-secret-v2:"), row.ID...)
	out = append(out, ':')
	return append(out, d[:]...), nil
}

// SecretAADFor is the additional data row's client secret was sealed
// with, by the version the row records.
func SecretAADFor(row storage.Provider) ([]byte, error) {
	switch row.SecretAADVersion {
	case 0, LegacyVersion:
		return LegacySecretAAD(row.ID), nil
	case Version:
		return SecretAAD(row)
	}
	return nil, fmt.Errorf("provider %s: unknown client secret additional-data version %d", row.ID, row.SecretAADVersion)
}

// Digest is the SHA-256 of the provider's fields that decide where its
// client secret and its users' tokens go, each length-prefixed so that no
// two different configurations encode alike. The confirmed endpoints are
// taken as stored (their JSON is written once by the registry).
func Digest(row storage.Provider) ([sha256.Size]byte, error) {
	p, err := provider.FromStoredConfig(row.Config)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	discovery := "0"
	if p.EnableDiscovery {
		discovery = "1"
	}
	var buf []byte
	for _, f := range []string{
		p.Issuer, discovery, p.AuthURL, p.TokenURL, p.RevocationURL, p.UserinfoURL, p.JWKSURL,
		p.ResourcesURL, p.ClientID, p.TokenEndpointAuthMethod, string(row.Endpoints),
	} {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(f)))
		buf = append(buf, f...)
	}
	return sha256.Sum256(buf), nil
}
