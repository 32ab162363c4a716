package state

import (
	"encoding/binary"
	"fmt"
	"time"
)

const (
	// version 2 is signed with Ed25519; version 1 (HMAC) is refused.
	version = 2
	// minBodyLen is a body with four empty strings: header, four length
	// bytes, two int64 times.
	minBodyLen = 2 + 4 + 8 + 8
)

// encode lays out the signed part of a token, with room left for the tag.
func encode(keyID byte, p Payload) ([]byte, error) {
	fields := [...]struct{ name, v string }{
		{"connection id", p.ConnectionID},
		{"workspace id", p.WorkspaceID},
		{"provider id", p.ProviderID},
		{"nonce", p.Nonce},
	}
	n := minBodyLen
	for _, f := range fields {
		if len(f.v) > MaxFieldLen {
			return nil, fmt.Errorf("%w: %s", ErrFieldTooLong, f.name)
		}
		n += len(f.v)
	}
	iat, exp := p.IssuedAt.Unix(), p.ExpiresAt.Unix()
	if iat <= 0 || exp <= iat {
		return nil, ErrBadTimes
	}
	b := make([]byte, 0, n+64)
	b = append(b, version, keyID)
	for _, f := range fields {
		b = append(b, byte(len(f.v)))
		b = append(b, f.v...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(iat))
	b = binary.BigEndian.AppendUint64(b, uint64(exp))
	return b, nil
}

// decode parses an authenticated body. It rejects anything encode could not
// have produced, so that every accepted token is the one encoding of its
// payload.
func decode(b []byte) (Payload, error) {
	rest := b[2:]
	var fields [4]string
	for i := range fields {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return Payload{}, ErrMalformed
		}
		n := int(rest[0])
		fields[i] = string(rest[1 : 1+n])
		rest = rest[1+n:]
	}
	if len(rest) != 16 {
		return Payload{}, ErrMalformed
	}
	iat := int64(binary.BigEndian.Uint64(rest[:8]))
	exp := int64(binary.BigEndian.Uint64(rest[8:]))
	if iat <= 0 || exp <= iat {
		return Payload{}, ErrMalformed
	}
	return Payload{
		ConnectionID: fields[0],
		WorkspaceID:  fields[1],
		ProviderID:   fields[2],
		Nonce:        fields[3],
		IssuedAt:     time.Unix(iat, 0).UTC(),
		ExpiresAt:    time.Unix(exp, 0).UTC(),
	}, nil
}
