package expectid_test

import (
	"testing"

	"github.com/dromos-dev/dromos/internal/expectid"
)

func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		name       string
		want       expectid.Identity
		sub, email string
		ok         bool
	}{
		{"same email, other case", expectid.Identity{Email: "Alice@Example.com"}, "s1", "alice@example.com", true},
		{"other email", expectid.Identity{Email: "alice@example.com"}, "s1", "mallory@example.com", false},
		{"email expected, none verified", expectid.Identity{Email: "alice@example.com"}, "s1", "", false},
		{"domain", expectid.Identity{EmailDomain: "example.com"}, "s1", "bob@EXAMPLE.com", true},
		{"other domain", expectid.Identity{EmailDomain: "example.com"}, "s1", "bob@example.com.evil.test", false},
		{"subdomain is another domain", expectid.Identity{EmailDomain: "example.com"}, "s1", "bob@mail.example.com", false},
		{"sub", expectid.Identity{Sub: "s1"}, "s1", "", true},
		{"sub differs in case", expectid.Identity{Sub: "s1"}, "S1", "", false},
		{"all must match", expectid.Identity{Sub: "s1", EmailDomain: "example.com"}, "s1", "x@other.test", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.want.Matches(tc.sub, tc.email); got != tc.ok {
				t.Fatalf("Matches = %v, want %v", got, tc.ok)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, bad := range []expectid.Identity{{}, {Email: "no-at"}, {Email: "a@b@c"}, {EmailDomain: "x@y.com"}, {EmailDomain: "nodot"},
		{Sub: "has space"}, {Sub: "ctl\x01"}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	for _, good := range []expectid.Identity{{Email: "a@b.c"}, {EmailDomain: "example.com"}, {Sub: "1234"}} {
		if err := good.Validate(); err != nil {
			t.Errorf("%+v refused: %v", good, err)
		}
	}
}

func TestStoredForm(t *testing.T) {
	e := expectid.Identity{Email: "a@b.c", Sub: "s"}
	got, err := expectid.Decode(e.Encode())
	if err != nil || got != e {
		t.Fatalf("round trip %+v %v", got, err)
	}
	if none, err := expectid.Decode(""); err != nil || !none.IsZero() || (expectid.Identity{}).Encode() != "" {
		t.Fatal("empty form")
	}
}
