package agentpolicy

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		opts    []string
		want    Policy
		errPart string
	}{
		{"none", nil, Policy{}, ""},
		{"flags", []string{"proxy-only", " Require-Confirmation ", "id-token"}, Policy{ProxyOnly: true, RequireConfirmation: true, IDToken: true}, ""},
		{"lists", []string{"providers=Google | github|google", "scopes=repo|read:*"},
			Policy{Providers: []string{"google", "github"}, Scopes: []string{"repo", "read:*"}}, ""},
		{"unknown", []string{"admin"}, Policy{}, `unknown option "admin"`},
		{"empty", []string{" "}, Policy{}, "empty option"},
		{"twice", []string{"id-token", "ID-TOKEN"}, Policy{}, "given twice"},
		{"flag value", []string{"id-token=true"}, Policy{}, "takes no value"},
		{"list no value", []string{"scopes="}, Policy{}, "needs a value"},
		{"item with quote", []string{`scopes=a"b`}, Policy{}, "quote"},
		{"lone wildcard", []string{"scopes=*"}, Policy{}, "would allow every scope"},
		{"inner wildcard", []string{"scopes=a*b"}, Policy{}, "may only end"},
		{"too many", []string{"providers=" + strings.Repeat("p|", 100) + "q"}, Policy{}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.opts)
			if tc.errPart != "" {
				if err == nil || !errors.Is(err, ErrBadOption) || !strings.Contains(err.Error(), tc.errPart) {
					t.Fatalf("got %v, want ErrBadOption containing %q", err, tc.errPart)
				}
				return
			}
			if tc.name == "too many" {
				// 100 "p" collapse into one: duplicates do not count.
				if err != nil || !slices.Equal(got.Providers, []string{"p", "q"}) {
					t.Fatalf("got %v %v", got, err)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Fatalf("got %+v %v, want %+v", got, err, tc.want)
			}
		})
	}
	var many []string
	for i := range 101 {
		many = append(many, "s"+strings.Repeat("x", i))
	}
	if _, err := Parse([]string{"scopes=" + strings.Join(many, "|")}); err == nil || !strings.Contains(err.Error(), "more than 100") {
		t.Fatalf("101 scopes: %v", err)
	}
}

func TestLimits(t *testing.T) {
	p := Policy{Providers: []string{"google"}, Scopes: []string{"openid", "https://www.googleapis.com/auth/drive*"}}
	if !p.AllowsProvider("Google") || p.AllowsProvider("github") || !(Policy{}).AllowsProvider("anything") {
		t.Fatal("AllowsProvider")
	}
	if bad := p.DisallowedScopes([]string{"openid", "https://www.googleapis.com/auth/drive.file"}); bad != nil {
		t.Fatalf("allowed scopes refused: %v", bad)
	}
	if bad := p.DisallowedScopes([]string{"openid", "admin", "https://www.googleapis.com/auth/gmail", "admin"}); !slices.Equal(bad, []string{"admin", "https://www.googleapis.com/auth/gmail"}) {
		t.Fatalf("got %v", bad)
	}
	if bad := (Policy{}).DisallowedScopes([]string{"anything"}); bad != nil {
		t.Fatalf("no list refused %v", bad)
	}
}

func TestStringRoundTrips(t *testing.T) {
	p := Policy{ProxyOnly: true, Providers: []string{"google", "github"}, Scopes: []string{"repo"}, RequireConfirmation: true, IDToken: true}
	q, err := Parse(strings.Split(p.String(), ";"))
	if err != nil || !q.Equal(p) {
		t.Fatalf("%q parsed to %+v %v", p.String(), q, err)
	}
}
