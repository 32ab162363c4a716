package pagecursor

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

func TestRoundTrip(t *testing.T) {
	k := storage.ConnectionKey{CreatedAt: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC),
		ID: "5b7f3c1e-8a0d-4c2e-9f10-2d3b4a5c6d7e"}
	got, err := Decode(Encode(k))
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(k.CreatedAt) || got.ID != k.ID {
		t.Fatalf("Decode(Encode(%+v)) = %+v", k, got)
	}
}

func TestDecodeRefuses(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for name, s := range map[string]string{
		"empty":         "",
		"not base64":    "***",
		"no prefix":     enc("1234.abc"),
		"other version": enc("c2.1234.abc"),
		"no id":         enc("c1.1234."),
		"no separator":  enc("c1.1234"),
		"bad time":      enc("c1.x.abc"),
		"negative time": enc("c1.-5.abc"),
		"space in id":   enc("c1.1234.a b"),
		"too long":      enc("c1.1234." + string(make([]byte, 600))),
	} {
		t.Run(name, func(t *testing.T) {
			if k, err := Decode(s); err == nil {
				t.Fatalf("Decode(%q) = %+v, want an error", s, k)
			}
		})
	}
}
