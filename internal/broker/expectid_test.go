package broker_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/testenv"
)

// An agent names who should consent (issue 20, expected identity): the
// broker sends login_hint, and after verifying the id_token of an
// independent OP refuses another account (failed/identity_mismatch, no
// token) and accepts the named one.
func TestExpectedIdentity(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		h := newHarness(t, dbURL)
		op := testenv.StartOP(t, h.srv.URL+"/auth/callback")
		ret, landed := returnPage(t)
		h.registerProvider(map[string]any{"name": "zitadel", "issuer": op.Issuer, "enable_discovery": true,
			"client_id": op.ClientID, "client_secret": op.ClientSecret})
		consent := func(expected map[string]any, scopes []string) consentResp {
			t.Helper()
			body := map[string]any{"workspace_id": "ws-1", "user_id": "u-1", "provider_name": "zitadel",
				"scopes": scopes, "return_url": ret.URL + "/done"}
			if expected != nil {
				body["expected_identity"] = expected
			}
			var c consentResp
			if st := h.do("POST", "/auth/consent-spec", body, &c); st != http.StatusOK {
				t.Fatalf("consent: %d", st)
			}
			return c
		}
		login := func(c consentResp) url.Values {
			t.Helper()
			b := testenv.NewBrowser(t)
			page, body, _ := b.Get(c.AuthURL)
			op.LoginAtOP(b, page, body)
			return <-landed
		}

		// Who the OP's test user is, from a consent without expectation.
		first := consent(nil, []string{"openid", "email"})
		if q := login(first); q.Get("status") != "success" {
			t.Fatalf("plain consent: %v", q)
		}
		known, err := h.store.GetConnection(context.Background(), first.ConnectionID)
		if err != nil || known.Subject == "" {
			t.Fatalf("no verified subject: %+v %v", known, err)
		}

		// login_hint carries an expected e-mail; openid is added.
		hinted := consent(map[string]any{"email": "nobody@example.test"}, []string{"email"})
		loc, _ := url.Parse(h.visitStart(hinted.AuthURL).Header.Get("Location"))
		if loc.Query().Get("login_hint") != "nobody@example.test" || !contains(hinted.Scopes, "openid") {
			t.Fatalf("authorization request %v, scopes %v", loc.Query(), hinted.Scopes)
		}

		for name, tc := range map[string]struct {
			expected map[string]any
			ok       bool
		}{
			"another sub":    {map[string]any{"sub": known.Subject + "-not"}, false},
			"another email":  {map[string]any{"email": "nobody@example.test"}, false},
			"another domain": {map[string]any{"email_domain": "example.test"}, false},
			"the sub":        {map[string]any{"sub": known.Subject}, true},
		} {
			t.Run(name, func(t *testing.T) {
				c := consent(tc.expected, []string{"openid"})
				q := login(c)
				conn, err := h.store.GetConnection(context.Background(), c.ConnectionID)
				if err != nil {
					t.Fatal(err)
				}
				if tc.ok {
					if q.Get("status") != "success" || conn.Status != storage.StatusActive {
						t.Fatalf("expected account refused: %v, %s/%s", q, conn.Status, conn.StatusReason)
					}
					return
				}
				if q.Get("status") != "error" || q.Get("error") != "identity_mismatch" ||
					conn.Status != storage.StatusFailed || conn.StatusReason != "identity_mismatch" {
					t.Fatalf("another account: %v, %s/%s", q, conn.Status, conn.StatusReason)
				}
				h.assertNoToken(c.ConnectionID)
			})
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
