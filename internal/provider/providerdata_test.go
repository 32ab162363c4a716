package provider

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/secret"
)

func TestTokenDataInstanceURL(t *testing.T) {
	sf := Profile{Name: "salesforce", Quirks: []string{QuirkTokenInstanceURL}}
	tests := []struct {
		name  string
		extra map[string]any
		want  map[string]string
	}{
		{"https instance_url kept",
			map[string]any{"instance_url": "https://acme.my.salesforce.com", "id": "https://login.salesforce.com/id/1/2"},
			map[string]string{"instance_url": "https://acme.my.salesforce.com"}},
		{"https instance_url of exactly 1024 bytes kept",
			map[string]any{"instance_url": "https://x.test/" + strings.Repeat("a", 1024-len("https://x.test/"))},
			map[string]string{"instance_url": "https://x.test/" + strings.Repeat("a", 1024-len("https://x.test/"))}},
		{"absent member", map[string]any{"scope": "api"}, nil},
		{"nil extra", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sf.TokenData(tt.extra)
			if err != nil {
				t.Fatalf("TokenData error = %v, want nil", err)
			}
			if tt.want == nil {
				if got != nil {
					t.Errorf("TokenData = %v, want nil map", got)
				}
				return
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("TokenData = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTokenDataRefusesJunk(t *testing.T) {
	sf := Profile{Name: "salesforce", Quirks: []string{QuirkTokenInstanceURL}}
	long := "https://x.test/" + strings.Repeat("b", 1025-len("https://x.test/"))
	tests := []struct {
		name  string
		value any
		// secretText must not show up in the error; "" skips the check.
		secretText string
	}{
		{"number", 4242.5, "4242"},
		{"boolean", true, "true"},
		{"object", map[string]any{"host": "evil-object.test"}, "evil-object"},
		{"empty", "", ""},
		{"http", "http://plain.example.test", "plain.example"},
		{"no scheme", "acme.my.salesforce.test", "acme.my"},
		{"https without host", "https:///path-only", "path-only"},
		{"credentials", "https://user@creds.example.test", "user@creds"},
		{"password credentials", "https://user:pw@creds2.example.test", "creds2"},
		{"space", "https://acme.example.test/a b", "acme.example"},
		{"control character", "https://ctl.example.test/\x01", "ctl.example"},
		{"non-ASCII", "https://ünïcode.example.test", "example.test"},
		{"longer than 1024 bytes", long, strings.Repeat("b", 40)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sf.TokenData(map[string]any{"instance_url": tt.value})
			if !errors.Is(err, ErrBadProviderData) {
				t.Fatalf("TokenData error = %v, want one wrapping ErrBadProviderData", err)
			}
			if got != nil {
				t.Errorf("TokenData = %v alongside an error, want nil", got)
			}
			if tt.secretText != "" && strings.Contains(err.Error(), tt.secretText) {
				t.Errorf("error %q quotes the bad value (%q)", err, tt.secretText)
			}
			if !strings.Contains(err.Error(), "instance_url") {
				t.Errorf("error %q does not name the member", err)
			}
		})
	}
}

func TestTokenDataWithoutQuirkKeepsNothing(t *testing.T) {
	extra := map[string]any{"instance_url": "https://acme.my.salesforce.com"}
	for _, quirks := range [][]string{nil, {QuirkCommaScopes}, {QuirkAtlassianResources}, {QuirkCallbackRealmID}} {
		t.Run(fmt.Sprint(quirks), func(t *testing.T) {
			p := Profile{Name: "p", Quirks: quirks}
			got, err := p.TokenData(extra)
			if err != nil || got != nil {
				t.Errorf("TokenData = %v, %v; want nil, nil", got, err)
			}
			// Not even a malformed value is looked at.
			got, err = p.TokenData(map[string]any{"instance_url": 7})
			if err != nil || got != nil {
				t.Errorf("TokenData(junk) = %v, %v; want nil, nil", got, err)
			}
		})
	}
}

// lookupFor returns the resource lookup of a profile with the given quirk.
func lookupFor(t *testing.T, quirk string) *ResourceLookup {
	t.Helper()
	p := Profile{Quirks: []string{quirk}}
	l, _ := p.Resources()
	if l == nil {
		t.Fatalf("no resource lookup for quirk %s", quirk)
	}
	return l
}

const (
	atlassianAnswer = `[{"id":"1324a887-45db-1bf4-1e99-ef0ff456d421","name":"Site name","url":"https://your-domain.atlassian.net",` +
		`"scopes":["write:jira-work","read:jira-user"],"avatarUrl":"https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/flag.png"},` +
		`{"id":"9a8b7c6d-0000-1111-2222-333344445555","name":"Other site","url":"https://other.atlassian.net",` +
		`"scopes":["read:confluence-content.all"],"avatarUrl":"https://x"}]`
	xeroAnswer = `[{"id":"e1eede29-f875-4a5d-8470-17f6a29a88b1","authEventId":"d99ecdfe-391d-43d2-b834-17636ba90e8d",` +
		`"tenantId":"70784a63-d24b-46a9-a4db-0e70a274b056","tenantType":"ORGANISATION","tenantName":"Maple Florist",` +
		`"createdDateUtc":"2019-07-09T23:40:30.1833130","updatedDateUtc":"2020-05-15T01:35:13.8491980"}]`
)

func TestResourceLookupParse(t *testing.T) {
	tests := []struct {
		name  string
		quirk string
		body  string
		want  map[string]string
	}{
		{"atlassian", QuirkAtlassianResources, atlassianAnswer, map[string]string{
			"cloud_id":  "1324a887-45db-1bf4-1e99-ef0ff456d421",
			"cloud_ids": "1324a887-45db-1bf4-1e99-ef0ff456d421,9a8b7c6d-0000-1111-2222-333344445555",
			"site_url":  "https://your-domain.atlassian.net",
		}},
		{"atlassian first site without url", QuirkAtlassianResources,
			`[{"id":"a1","name":"n"},{"id":"b2","url":"https://second.atlassian.net"}]`,
			map[string]string{"cloud_id": "a1", "cloud_ids": "a1,b2"}},
		{"atlassian non-https url dropped", QuirkAtlassianResources,
			`[{"id":"a1","url":"http://your-domain.atlassian.net"}]`,
			map[string]string{"cloud_id": "a1", "cloud_ids": "a1"}},
		{"atlassian url with credentials dropped", QuirkAtlassianResources,
			`[{"id":"a1","url":"https://u:p@your-domain.atlassian.net"}]`,
			map[string]string{"cloud_id": "a1", "cloud_ids": "a1"}},
		{"atlassian url that is not a string dropped", QuirkAtlassianResources,
			`[{"id":"a1","url":{"href":"https://your-domain.atlassian.net"}}]`,
			map[string]string{"cloud_id": "a1", "cloud_ids": "a1"}},
		{"xero", QuirkXeroTenants, xeroAnswer, map[string]string{
			"tenant_id":   "70784a63-d24b-46a9-a4db-0e70a274b056",
			"tenant_ids":  "70784a63-d24b-46a9-a4db-0e70a274b056",
			"tenant_name": "Maple Florist",
		}},
		{"xero name with a control character dropped", QuirkXeroTenants,
			`[{"tenantId":"t1","tenantName":"Maple\u0007Florist"}]`,
			map[string]string{"tenant_id": "t1", "tenant_ids": "t1"}},
		{"xero name with a newline dropped", QuirkXeroTenants,
			`[{"tenantId":"t1","tenantName":"Maple\nFlorist"}]`,
			map[string]string{"tenant_id": "t1", "tenant_ids": "t1"}},
		{"xero name longer than 255 bytes dropped", QuirkXeroTenants,
			`[{"tenantId":"t1","tenantName":"` + strings.Repeat("n", 256) + `"}]`,
			map[string]string{"tenant_id": "t1", "tenant_ids": "t1"}},
		{"xero empty name dropped", QuirkXeroTenants,
			`[{"tenantId":"t1","tenantName":""}]`,
			map[string]string{"tenant_id": "t1", "tenant_ids": "t1"}},
		{"xero non-ASCII name kept", QuirkXeroTenants,
			`[{"tenantId":"t1","tenantName":"Fleurs de l'Île"}]`,
			map[string]string{"tenant_id": "t1", "tenant_ids": "t1", "tenant_name": "Fleurs de l'Île"}},
		{"xero several tenants, sign-in event unknown: no guess", QuirkXeroTenants,
			`[{"tenantId":"t1"},{"tenantId":"t2","tenantName":"Second"}]`,
			map[string]string{"tenant_ids": "t1,t2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lookupFor(t, tt.quirk).Parse([]byte(tt.body), "")
			if err != nil {
				t.Fatalf("Parse error = %v, want nil", err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("Parse = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestResourceLookupParseRefusesJunk(t *testing.T) {
	tests := []struct {
		name  string
		quirk string
		body  string
		// secretText must not show up in the error; "" skips the check.
		secretText string
	}{
		{"not JSON", QuirkAtlassianResources, `<html>secret-page</html>`, "secret-page"},
		{"empty body", QuirkAtlassianResources, ``, ""},
		{"JSON null", QuirkAtlassianResources, `null`, ""},
		{"object instead of array", QuirkAtlassianResources, `{"id":"obj-id-1","url":"https://a.atlassian.net"}`, "obj-id-1"},
		{"array of strings", QuirkAtlassianResources, `["str-id-1"]`, "str-id-1"},
		{"empty array", QuirkAtlassianResources, `[]`, ""},
		{"item without id", QuirkAtlassianResources, `[{"name":"Site name","url":"https://a.atlassian.net"}]`, "Site name"},
		{"null item", QuirkAtlassianResources, `[null]`, ""},
		{"numeric id", QuirkAtlassianResources, `[{"id":12345}]`, "12345"},
		{"empty id", QuirkAtlassianResources, `[{"id":""}]`, ""},
		{"id with a comma", QuirkAtlassianResources, `[{"id":"comma-a,comma-b"}]`, "comma-a"},
		{"id with a space", QuirkAtlassianResources, `[{"id":"space-a space-b"}]`, "space-a"},
		{"id longer than 255 bytes", QuirkAtlassianResources, `[{"id":"` + strings.Repeat("L", 256) + `"}]`, strings.Repeat("L", 20)},
		{"bad id in a later item", QuirkAtlassianResources, `[{"id":"good-1"},{"id":"bad id 2"}]`, "bad id"},
		{"xero item with only the connection id", QuirkXeroTenants,
			`[{"id":"e1eede29-f875-4a5d-8470-17f6a29a88b1","tenantName":"Maple Florist"}]`, "e1eede29"},
		{"xero tenant id with a comma", QuirkXeroTenants, `[{"tenantId":"ten-a,ten-b"}]`, "ten-a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lookupFor(t, tt.quirk).Parse([]byte(tt.body), "")
			if !errors.Is(err, ErrBadProviderData) {
				t.Fatalf("Parse error = %v, want one wrapping ErrBadProviderData", err)
			}
			if got != nil {
				t.Errorf("Parse = %v alongside an error, want nil", got)
			}
			if tt.secretText != "" && strings.Contains(err.Error(), tt.secretText) {
				t.Errorf("error %q quotes the answer (%q)", err, tt.secretText)
			}
		})
	}
}

func TestResourceLookupParseKeepsAtMost50IDs(t *testing.T) {
	var items, ids []string
	for i := range 60 {
		id := fmt.Sprintf("site-%02d", i)
		items = append(items, fmt.Sprintf(`{"id":%q,"url":"https://s%d.atlassian.net"}`, id, i))
		if i < 50 {
			ids = append(ids, id)
		}
	}
	got, err := lookupFor(t, QuirkAtlassianResources).Parse([]byte("["+strings.Join(items, ",")+"]"), "")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Split(got["cloud_ids"], ",")); n != 50 {
		t.Errorf("cloud_ids holds %d ids, want 50", n)
	}
	if want := strings.Join(ids, ","); got["cloud_ids"] != want {
		t.Errorf("cloud_ids = %q, want %q", got["cloud_ids"], want)
	}
	if got["cloud_id"] != "site-00" || got["site_url"] != "https://s0.atlassian.net" {
		t.Errorf("first site = %q %q, want site-00 https://s0.atlassian.net", got["cloud_id"], got["site_url"])
	}

	// Items past the 50th are not kept but are still checked.
	items = append(items, `{"id":"late bad"}`)
	if _, err := lookupFor(t, QuirkAtlassianResources).Parse([]byte("["+strings.Join(items, ",")+"]"), ""); !errors.Is(err, ErrBadProviderData) {
		t.Errorf("Parse with a bad 61st id: error = %v, want ErrBadProviderData", err)
	}
}

func TestProfileResources(t *testing.T) {
	tests := []struct {
		name         string
		quirks       []string
		resourcesURL string
		wantIDKey    string
		wantURL      string
	}{
		{"atlassian default", []string{QuirkAtlassianResources}, "", "cloud_id",
			"https://api.atlassian.com/oauth/token/accessible-resources"},
		{"xero default", []string{QuirkXeroTenants}, "", "tenant_id", "https://api.xero.com/connections"},
		{"atlassian override", []string{QuirkAtlassianResources}, "https://atlassian.proxy.test/resources", "cloud_id",
			"https://atlassian.proxy.test/resources"},
		{"xero override next to other quirks", []string{QuirkTokenTypeAny, QuirkXeroTenants}, "https://xero.proxy.test/conn",
			"tenant_id", "https://xero.proxy.test/conn"},
		{"no quirks", nil, "", "", ""},
		{"no lookup quirk", []string{QuirkTokenInstanceURL, QuirkCommaScopes}, "", "", ""},
		{"no lookup quirk but resources_url", []string{QuirkTokenInstanceURL}, "https://x.test/r", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Profile{Name: "p", Quirks: tt.quirks, ResourcesURL: tt.resourcesURL}
			l, u := p.Resources()
			if tt.wantIDKey == "" {
				if l != nil || u != "" {
					t.Errorf("Resources = %+v, %q; want nil, \"\"", l, u)
				}
				return
			}
			if l == nil {
				t.Fatalf("Resources = nil, want the %s lookup", tt.wantIDKey)
			}
			if l.IDKey != tt.wantIDKey {
				t.Errorf("lookup IDKey = %q, want %q", l.IDKey, tt.wantIDKey)
			}
			if u != tt.wantURL {
				t.Errorf("Resources URL = %q, want %q", u, tt.wantURL)
			}
		})
	}
}

// lookupBaseProfile is a valid profile to which the tests add lookup quirks.
func lookupBaseProfile() Profile {
	p := Profile{
		Name:         "atlassian",
		ClientID:     "cid",
		ClientSecret: secret.String("s3cret"),
		AuthURL:      "https://auth.atlassian.com/authorize",
		TokenURL:     "https://auth.atlassian.com/oauth/token",
	}
	p.Normalize()
	return p
}

func TestValidateResourceLookup(t *testing.T) {
	tests := []struct {
		name         string
		quirks       []string
		resourcesURL string
		wantProblem  string // "" for a valid profile
	}{
		{"one lookup quirk", []string{QuirkAtlassianResources}, "", ""},
		{"lookup quirk with resources_url", []string{QuirkXeroTenants}, "https://xero.proxy.test/connections", ""},
		{"two lookup quirks", []string{QuirkAtlassianResources, QuirkXeroTenants}, "", "at most one resource lookup quirk"},
		{"resources_url without a lookup quirk", nil, "https://x.test/r", "resources_url needs a resource lookup quirk"},
		{"resources_url without a lookup quirk but others", []string{QuirkTokenInstanceURL}, "https://x.test/r",
			"resources_url needs a resource lookup quirk"},
		{"ftp resources_url", []string{QuirkAtlassianResources}, "ftp://x", "resources_url must be an http(s) URL"},
		{"resources_url without host", []string{QuirkAtlassianResources}, "https:///accessible-resources", "resources_url must be an absolute URL"},
		{"resources_url with credentials", []string{QuirkAtlassianResources}, "https://u:p@x.test/r",
			"resources_url must not contain credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := lookupBaseProfile()
			p.Quirks = tt.quirks
			p.ResourcesURL = tt.resourcesURL
			err := p.Validate()
			if tt.wantProblem == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want a *ValidationError", err)
			}
			found := false
			for _, prob := range ve.Problems {
				if strings.Contains(prob, tt.wantProblem) {
					found = true
				}
			}
			if !found {
				t.Errorf("problems = %q, want one containing %q", ve.Problems, tt.wantProblem)
			}
			if len(ve.Problems) != 1 {
				t.Errorf("problems = %q, want exactly one", ve.Problems)
			}
		})
	}
}

func TestDataKey(t *testing.T) {
	for k, want := range map[string]string{
		"provider.cloud_id": "cloud_id", "provider.realmId": "realmId",
		"callback.realmId": "realmId", "callback.shop": "shop",
		"team": "", "callback.other": "", "providers.x": "", "Provider.x": "",
	} {
		got, ok := DataKey(k)
		if ok != (want != "") || got != want {
			t.Errorf("DataKey(%q) = %q, %v; want %q", k, got, ok, want)
		}
	}
}

// The sign-in event comes from the access token's payload when it is a
// JWT with the lookup's claim; anything else gives "".
func TestTokenEvent(t *testing.T) {
	l := lookupFor(t, QuirkXeroTenants)
	jwt := func(claims string) string {
		return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".c2ln"
	}
	for tok, want := range map[string]string{
		jwt(`{"authentication_event_id":"894f5c8c-3938-416d-966e-8f28fa24d358","sub":"u"}`): "894f5c8c-3938-416d-966e-8f28fa24d358",
		jwt(`{"sub":"u"}`):                    "",
		jwt(`{"authentication_event_id":42}`): "",
		jwt(`not json`):                       "",
		"opaque-token":                        "",
		"a.b":                                 "",
		jwt(`{"authentication_event_id":"a\nb"}`): "",
	} {
		if got := l.TokenEvent(tok); got != want {
			t.Errorf("TokenEvent(%q) = %q, want %q", tok, got, want)
		}
	}
	if got := lookupFor(t, QuirkAtlassianResources).TokenEvent(jwt(`{"authentication_event_id":"e"}`)); got != "" {
		t.Errorf("a lookup without an event claim read %q", got)
	}
}

// Xero lists every organisation the user ever connected to the app;
// tenant_id is the one this sign-in connected, never a guess.
func TestXeroTenantOfThisSignIn(t *testing.T) {
	l := lookupFor(t, QuirkXeroTenants)
	for _, tt := range []struct {
		name, body, event string
		want              map[string]string
	}{
		{"the tenant of this sign-in, wherever it is listed",
			`[{"tenantId":"t1","tenantName":"Old Org","authEventId":"ev-old"},{"tenantId":"t2","tenantName":"New Org","authEventId":"ev-new"}]`,
			"ev-new", map[string]string{"tenant_id": "t2", "tenant_ids": "t1,t2", "tenant_name": "New Org"}},
		{"two tenants of this sign-in: no guess",
			`[{"tenantId":"t1","authEventId":"ev"},{"tenantId":"t2","authEventId":"ev"}]`,
			"ev", map[string]string{"tenant_ids": "t1,t2"}},
		{"no tenant of this sign-in: no guess",
			`[{"tenantId":"t1","authEventId":"a"},{"tenantId":"t2","authEventId":"b"}]`,
			"c", map[string]string{"tenant_ids": "t1,t2"}},
		{"one tenant is the answer whatever the event",
			`[{"tenantId":"t1","authEventId":"ev-old"}]`,
			"ev-new", map[string]string{"tenant_id": "t1", "tenant_ids": "t1"}},
	} {
		got, err := l.Parse([]byte(tt.body), tt.event)
		if err != nil || !maps.Equal(got, tt.want) {
			t.Errorf("%s: %v %v, want %v", tt.name, got, err, tt.want)
		}
	}
}
