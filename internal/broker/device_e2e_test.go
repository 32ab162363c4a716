package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/testenv"
	"github.com/dromos-dev/dromos/internal/vault"
	"github.com/dromos-dev/dromos/sdk"
)

const panvaSecret = "par-client-secret-0123456789"

// deviceStack is the whole system with panva's oidc-provider offering the
// device authorization grant, registered as an oauth2_device_code
// provider.
func deviceStack(t *testing.T, dbURL string) (*stack, *panvaOP) {
	s := newStack(t, dbURL)
	op := startPanvaOP(t, s.h.srv.URL+"/auth/callback", false, "DEVICE_FLOW=true")
	s.h.registerProvider(map[string]any{
		"name": "panva-device", "auth_mode": "oauth2_device_code", "issuer": op.issuer, "enable_discovery": true,
		"client_id": "dromos-par", "client_secret": panvaSecret, "token_endpoint_auth_method": "client_secret_basic",
	})
	return s, op
}

// enterUserCode is the person's side at the provider, over real HTTP with
// a cookie jar: open the verification page, type the user code, confirm
// (or abort), log in and consent. It returns the last page's body.
func enterUserCode(t *testing.T, verificationURI, userCode string, abort bool) string {
	t.Helper()
	b := testenv.NewBrowser(t)
	page, body, status := b.Get(verificationURI)
	action, form, err := testenv.Form(page, body)
	if status != 200 || err != nil {
		t.Fatalf("verification page: %d %v", status, err)
	}
	form.Set("user_code", userCode)
	page, body, status = b.PostForm(action, form)
	action, form, err = testenv.Form(page, body)
	if status != 200 || err != nil || form.Get("confirm") != "yes" {
		t.Fatalf("expected the provider's confirmation page, got %d %v %v", status, err, form)
	}
	if abort {
		form.Set("abort", "yes")
		_, body, _ = b.PostForm(action, form)
		return body
	}
	page, body, status = b.PostForm(action, form)
	if status != 200 || !strings.Contains(page.Path, "/interaction/") {
		t.Fatalf("expected the provider's login page, got %d at %s", status, page.Path)
	}
	action, form, err = testenv.Form(page, body)
	if err != nil {
		t.Fatal(err)
	}
	form.Set("login", "alice")
	form.Set("password", "any")
	page, body, status = b.PostForm(action, form)
	if status != 200 || !strings.Contains(page.Path, "/interaction/") {
		t.Fatalf("expected the consent page, got %d at %s", status, page.Path)
	}
	action, form, err = testenv.Form(page, body)
	if err != nil {
		t.Fatal(err)
	}
	_, body, status = b.PostForm(action, form)
	if status != 200 {
		t.Fatalf("after consent: %d", status)
	}
	return body
}

// pollUntil advances the broker's clock by the interval and runs poll
// passes until the connection leaves pending.
func (s *stack) pollUntil(t *testing.T, connID string, interval time.Duration) storage.Connection {
	t.Helper()
	for range 5 {
		s.h.clock.Advance(interval)
		if _, err := s.h.broker.PollDevices(context.Background()); err != nil {
			t.Fatal(err)
		}
		c, err := s.h.store.GetConnection(context.Background(), connID)
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != storage.StatusPending {
			return c
		}
	}
	t.Fatal("the connection stayed pending")
	return storage.Connection{}
}

// deviceCode opens the sealed device code of a pending connection, as
// only the broker can: the test needs it to look for it elsewhere.
func deviceCode(t *testing.T, s *stack, connID string) string {
	t.Helper()
	g, err := s.h.store.GetDeviceGrant(context.Background(), connID)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := vault.NewKeyring(encKey)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := ring.Open(g.DeviceCode, []byte("device_code:"+connID))
	if err != nil || len(plain) < 16 {
		t.Fatalf("device code: %v (%d bytes)", err, len(plain))
	}
	return string(plain)
}

// TestDeviceFlowWithIndependentOP: through the gateway (REST, gRPC) and
// the SDK, a device-code connection against panva's oidc-provider answers
// the verification page and user code instead of an authUrl; the person
// types the code, logs in and consents at the provider; the broker's poll
// turns the connection active with a token the provider accepts. A person
// who aborts turns it failed with access_denied. The device code appears
// in no answer, log line, audit row or table.
func TestDeviceFlowWithIndependentOP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s, op := deviceStack(t, dbURL)
		ctx := context.Background()
		client, err := sdk.New(s.gwURL, sdk.WithAPIKey(agentKey))
		if err != nil {
			t.Fatal(err)
		}
		var answers []string

		// REST, checked against api/openapi.yaml.
		var rest map[string]any
		if st := s.rest(t, "POST", "/v1/request-connection", "/v1/request-connection", agentKey, map[string]any{
			"user_id": "alice", "provider_name": "panva-device", "scopes": []string{"openid", "email"}, "return_url": s.retURL,
		}, &rest); st != 200 {
			t.Fatalf("REST request-connection: %d %v", st, rest)
		}
		answers = append(answers, toJSON(rest))
		if rest["authUrl"] != "" || rest["status"] != "pending" || rest["user_code"] == "" || rest["expires_in"].(float64) <= 0 ||
			rest["interval"].(float64) != 5 || !strings.HasPrefix(rest["verification_uri"].(string), op.issuer+"/") ||
			!strings.Contains(rest["verification_uri_complete"].(string), "user_code=") {
			t.Fatalf("REST answer %v", rest)
		}

		// gRPC fields 8-12.
		gctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+agentKey)
		g, err := s.grpc.RequestConnection(gctx, &dromosv1.RequestConnectionRequest{UserId: "alice", ProviderName: "panva-device",
			Scopes: []string{"openid"}, ReturnUrl: s.retURL})
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, protojson.Format(g))
		if g.GetAuthUrl() != "" || g.GetStatus() != "pending" || g.GetUserCode() == "" || g.GetVerificationUri() == "" ||
			g.GetVerificationUriComplete() == "" || g.GetExpiresIn() <= 0 || g.GetInterval() != 5 {
			t.Fatalf("gRPC answer %v", g)
		}

		// The SDK; this connection is the one the person approves.
		conn, err := client.RequestConnection(ctx, sdk.RequestConnectionInput{UserID: "alice", ProviderName: "panva-device",
			Scopes: []string{"openid", "email"}, ReturnURL: s.retURL})
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, fmt.Sprintf("%+v %+v", conn, conn.Device))
		if conn.AuthURL != "" || conn.Status != sdk.StatusPending || conn.Device == nil || conn.Device.Interval != 5*time.Second {
			t.Fatalf("SDK connection %+v", conn)
		}
		code := deviceCode(t, s, conn.ConnectionID)
		if st, err := client.CheckConnection(ctx, conn.ConnectionID); err != nil || st.Status != sdk.StatusPending {
			t.Fatalf("before the user: %v %v", st, err)
		}
		// Polled before the person acts: authorization_pending, still pending.
		s.h.clock.Advance(5 * time.Second)
		if n, err := s.h.broker.PollDevices(ctx); err != nil || n == 0 {
			t.Fatalf("first pass polled %d: %v", n, err)
		}
		if st := s.h.status(conn.ConnectionID); st != storage.StatusPending {
			t.Fatalf("after authorization_pending: %s", st)
		}

		enterUserCode(t, conn.Device.VerificationURI, conn.Device.UserCode, false)
		c := s.pollUntil(t, conn.ConnectionID, 5*time.Second)
		if c.Status != storage.StatusActive || c.Subject != "alice" {
			t.Fatalf("after approval: %s (%s), subject %q", c.Status, c.StatusReason, c.Subject)
		}
		waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := client.WaitForActive(waitCtx, conn.ConnectionID, sdk.WaitOptions{Interval: 50 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		tok, err := client.GetToken(ctx, conn.ConnectionID)
		if err != nil || tok.AccessToken == "" {
			t.Fatalf("token read: %v", err)
		}
		// The provider itself accepts the token.
		req, _ := http.NewRequest("GET", op.issuer+"/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var me map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&me)
		resp.Body.Close()
		if resp.StatusCode != 200 || me["sub"] != "alice" {
			t.Fatalf("userinfo with the device token: %d %v", resp.StatusCode, me)
		}
		if _, err := s.h.store.GetDeviceGrant(ctx, conn.ConnectionID); err == nil {
			t.Fatal("the grant row outlived the poll")
		}

		// A person who aborts: failed with access_denied, no token.
		denied, err := client.RequestConnection(ctx, sdk.RequestConnectionInput{UserID: "bob", ProviderName: "panva-device",
			Scopes: []string{"openid"}, ReturnURL: s.retURL})
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, fmt.Sprintf("%+v %+v", denied, denied.Device))
		deniedCode := deviceCode(t, s, denied.ConnectionID)
		enterUserCode(t, denied.Device.VerificationURIComplete, denied.Device.UserCode, true)
		if c := s.pollUntil(t, denied.ConnectionID, 5*time.Second); c.Status != storage.StatusFailed || c.StatusReason != "access_denied" {
			t.Fatalf("after abort: %s (%s)", c.Status, c.StatusReason)
		}
		s.h.assertNoToken(denied.ConnectionID)
		st, err := client.CheckConnection(ctx, denied.ConnectionID)
		if err != nil || st.Status != sdk.StatusFailed || st.Reason != "access_denied" {
			t.Fatalf("SDK status after abort: %+v %v", st, err)
		}
		if err := client.WaitForActive(ctx, denied.ConnectionID, sdk.WaitOptions{}); err == nil {
			t.Fatal("WaitForActive succeeded on a denied connection")
		}

		// The device codes stay in the broker, sealed.
		s.h.broker.Close()
		events, err := s.h.store.ListAudit(ctx, storage.AuditFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var audit strings.Builder
		kinds := map[string]int{}
		for _, e := range events {
			kinds[e.Type]++
			fmt.Fprintf(&audit, "%+v\n", e)
		}
		if kinds["device.succeeded"] != 1 || kinds["device.failed"] != 1 {
			t.Fatalf("audit rows %v", kinds)
		}
		events2, err := s.h.store.ListLifecycleEvents(ctx, conn.ConnectionID)
		if err != nil || len(events2) == 0 || events2[len(events2)-1].Type != storage.LifecycleActive {
			t.Fatalf("webhook outbox for the approved connection: %+v %v", events2, err)
		}
		dump := dumpDatabase(t, dbURL)
		for _, secret := range []string{code, deniedCode} {
			for where, text := range map[string]string{"answers": strings.Join(answers, "\n"), "broker logs": s.h.logs.String(),
				"gateway logs": s.gwLogs.String(), "audit": audit.String(), "database": dump} {
				if strings.Contains(text, secret) || strings.Contains(text, url.QueryEscape(secret)) {
					t.Errorf("a device code appears in the %s", where)
				}
			}
		}
		if !strings.Contains(dump, "device_grants") && !strings.Contains(dump, conn.ConnectionID) {
			t.Fatal("the dump looks empty")
		}
	})
}
