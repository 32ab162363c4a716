package authreq

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/provider"
)

type recordingPusher struct {
	calls  int
	params url.Values
	parURL string
	err    error
}

func (r *recordingPusher) PushAuthorization(_ context.Context, parURL string, _ exchange.Endpoint, params url.Values) (exchange.PushedRequest, error) {
	r.calls++
	r.params, r.parURL = params, parURL
	if r.err != nil {
		return exchange.PushedRequest{}, r.err
	}
	return exchange.PushedRequest{RequestURI: "urn:ietf:params:oauth:request_uri:abc"}, nil
}

var req = provider.AuthRequest{ClientID: "cid", RedirectURI: "https://dromos.example/auth/callback", Scopes: []string{"openid"},
	State: "STATE", Nonce: "NONCE", CodeChallenge: "CHALLENGE"}

func client() (exchange.Endpoint, error) {
	return exchange.Endpoint{TokenURL: "https://op.example/token", ClientID: "cid"}, nil
}

func TestURL(t *testing.T) {
	ctx := context.Background()
	t.Run("not pushed", func(t *testing.T) {
		p := &recordingPusher{}
		got, err := URL(ctx, p, &provider.Profile{}, Target{Auth: "https://op.example/auth", PAR: "https://op.example/par"}, client, req)
		u, _ := url.Parse(got)
		if err != nil || p.calls != 0 || u.Query().Get("state") != "STATE" {
			t.Fatalf("%s %v calls=%d", got, err, p.calls)
		}
	})
	for _, tc := range []struct {
		name string
		prof provider.Profile
		t    Target
	}{
		{"required by the provider", provider.Profile{}, Target{Auth: "https://op.example/auth?tenant=x", PAR: "https://op.example/par", RequirePAR: true}},
		{"asked by the profile", provider.Profile{UsePAR: true}, Target{Auth: "https://op.example/auth?tenant=x", PAR: "https://op.example/par"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &recordingPusher{}
			got, err := URL(ctx, p, &tc.prof, tc.t, client, req)
			if err != nil || p.calls != 1 || p.parURL != "https://op.example/par" {
				t.Fatalf("%s %v calls=%d", got, err, p.calls)
			}
			u, _ := url.Parse(got)
			q := u.Query()
			// Only client_id and request_uri (and the endpoint's own
			// query) reach the front channel.
			if len(q) != 3 || q.Get("client_id") != "cid" || q.Get("request_uri") != "urn:ietf:params:oauth:request_uri:abc" || q.Get("tenant") != "x" {
				t.Fatalf("front channel %v", q)
			}
			for _, k := range []string{"state", "nonce", "code_challenge", "redirect_uri", "scope", "response_type"} {
				if p.params.Get(k) == "" {
					t.Errorf("pushed request lacks %s: %v", k, p.params)
				}
			}
			if p.params.Has("client_id") {
				t.Error("client_id pushed among the parameters; the exchange package adds it")
			}
		})
	}
	t.Run("required without an endpoint", func(t *testing.T) {
		_, err := URL(ctx, &recordingPusher{}, &provider.Profile{}, Target{Auth: "https://op.example/auth", RequirePAR: true}, client, req)
		if !errors.Is(err, ErrNoPAREndpoint) {
			t.Fatal(err)
		}
	})
	t.Run("push refused", func(t *testing.T) {
		refused := &exchange.Error{Code: "invalid_request"}
		_, err := URL(ctx, &recordingPusher{err: refused}, &provider.Profile{UsePAR: true}, Target{Auth: "https://op.example/auth", PAR: "https://op.example/par"}, client, req)
		if !errors.As(err, new(*exchange.Error)) {
			t.Fatal(err)
		}
	})
}
