package provider

import (
	"slices"
	"strings"
	"testing"
)

// TestAllowedScopes: allowed_scopes is normalised, checked entry by entry,
// must cover the profile's default scopes, and survives storage.
func TestAllowedScopes(t *testing.T) {
	p := validProfile()
	p.AllowedScopes = []string{" read ", "write", "read", "https://www.googleapis.com/auth/drive*"}
	p.Normalize()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []string{"read", "write", "https://www.googleapis.com/auth/drive*"}
	if !slices.Equal(p.AllowedScopes, want) {
		t.Fatalf("normalised allowed_scopes %q, want %q", p.AllowedScopes, want)
	}
	b, err := p.StoredConfig()
	if err != nil {
		t.Fatal(err)
	}
	back, err := FromStoredConfig(b)
	if err != nil || !slices.Equal(back.AllowedScopes, want) {
		t.Fatalf("stored config %s gave back %q (%v)", b, back.AllowedScopes, err)
	}

	for _, tc := range []struct {
		name    string
		allowed []string
		want    string
	}{
		{"control character", []string{"read", "write", "adm\x1bin"}, "allowed_scopes[2] must be printable ASCII"},
		{"lone wildcard", []string{"*"}, "would allow every scope"},
		{"default scopes outside", []string{"read"}, "scopes write are outside allowed_scopes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := validProfile()
			p.AllowedScopes = tc.allowed
			p.Normalize()
			if err := p.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want a problem containing %q", err, tc.want)
			}
		})
	}
}
