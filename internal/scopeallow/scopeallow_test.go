package scopeallow

import (
	"slices"
	"strings"
	"testing"
)

func TestDisallowed(t *testing.T) {
	google := []string{"openid", "email", "https://www.googleapis.com/auth/drive*"}
	for _, tc := range []struct {
		name  string
		list  []string
		asked []string
		want  []string
	}{
		{"empty list allows anything", nil, []string{"admin:org", "repo:delete"}, nil},
		{"exact match", []string{"repo", "read:user"}, []string{"read:user", "repo"}, nil},
		{"exact is not prefix", []string{"repo"}, []string{"repo:delete"}, []string{"repo:delete"}},
		{"outside named in order, once", []string{"repo"}, []string{"admin:org", "repo", "repo:delete", "admin:org"}, []string{"admin:org", "repo:delete"}},
		{"prefix entry", google, []string{"openid", "https://www.googleapis.com/auth/drive.readonly", "https://www.googleapis.com/auth/drive"}, nil},
		{"prefix does not reach another API", google, []string{"https://www.googleapis.com/auth/gmail.send"}, []string{"https://www.googleapis.com/auth/gmail.send"}},
		{"case matters", []string{"Read"}, []string{"read"}, []string{"read"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Disallowed(tc.list, tc.asked); !slices.Equal(got, tc.want) {
				t.Fatalf("Disallowed(%q, %q) = %q, want %q", tc.list, tc.asked, got, tc.want)
			}
		})
	}
}

func TestProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		list []string
		want string // substring of the only problem; "" for none
	}{
		{"valid", []string{"repo", "https://www.googleapis.com/auth/drive*", "a*"}, ""},
		{"empty entry", []string{""}, "allowed_scopes[0] must be 1-256"},
		{"too long", []string{strings.Repeat("a", MaxEntryLen+1)}, "must be 1-256"},
		{"control character", []string{"repo\n"}, "printable ASCII"},
		{"space", []string{"repo user"}, "printable ASCII"},
		{"non-ASCII", []string{"répo"}, "printable ASCII"},
		{"lone wildcard", []string{"*"}, "would allow every scope"},
		{"inner wildcard", []string{"a*b"}, "may only end"},
		{"double wildcard", []string{"a**"}, "may only end"},
		{"too many", slices.Repeat([]string{"x"}, MaxEntries+1), "at most 200 entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Problems(tc.list)
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("Problems(%q) = %q, want none", tc.list, got)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0], tc.want) {
				t.Fatalf("Problems = %q, want one containing %q", got, tc.want)
			}
		})
	}
}
