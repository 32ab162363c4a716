package credential

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const key = "sk-live-0123456789abcdef"

func bearerSpec() Spec {
	s := Spec{Injection: Injection{ValuePrefix: "Bearer "}}
	s.Normalize(TypeAPIKey)
	return s
}

func TestParse(t *testing.T) {
	cases := []struct {
		name string
		typ  string
		in   map[string]string
		want string // error substring; "" means accepted
	}{
		{"api key", TypeAPIKey, map[string]string{"api_key": key}, ""},
		{"api key missing", TypeAPIKey, map[string]string{}, "api_key is required"},
		{"api key with a newline", TypeAPIKey, map[string]string{"api_key": "sk\nX-Evil: 1"}, "api_key is required"},
		{"api key with spaces around", TypeAPIKey, map[string]string{"api_key": " " + key}, "api_key is required"},
		{"api key too long", TypeAPIKey, map[string]string{"api_key": strings.Repeat("k", 4097)}, "api_key is required"},
		{"unknown member", TypeAPIKey, map[string]string{"api_key": key, "password": "x"}, `unknown member "password"`},
		{"basic", TypeBasic, map[string]string{"username": "AC123", "password": "pw-secret"}, ""},
		{"basic without password", TypeBasic, map[string]string{"username": "AC123"}, "password is required"},
		{"basic user with a colon", TypeBasic, map[string]string{"username": "a:b", "password": "x"}, "may not contain ':'"},
		{"oauth provider", "", map[string]string{"api_key": key}, "takes no credentials"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.typ, bearerSpec(), tc.in)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Type != tc.typ {
					t.Fatalf("type %q", c.Type)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an ErrInput saying %q", err, tc.want)
			}
			for _, v := range tc.in {
				if len(v) > 3 && strings.Contains(err.Error(), v) {
					t.Fatalf("error echoes a submitted value: %v", err)
				}
			}
		})
	}
}

func TestInjectionAndTokenView(t *testing.T) {
	bearer, _ := Parse(TypeAPIKey, bearerSpec(), map[string]string{"api_key": key})
	custom := Spec{Injection: Injection{Header: "x-api-key"}}
	custom.Normalize(TypeAPIKey)
	xkey, _ := Parse(TypeAPIKey, custom, map[string]string{"api_key": key})
	basic, _ := Parse(TypeBasic, Spec{}, map[string]string{"username": "AC1", "password": "pw"})
	for _, tc := range []struct {
		c                Credential
		header, value    string
		token, tokenType string
	}{
		{bearer, "Authorization", "Bearer " + key, key, "Bearer"},
		{xkey, "X-Api-Key", key, key, "api_key"},
		{basic, "Authorization", "Basic QUMxOnB3", "QUMxOnB3", "Basic"},
	} {
		h := http.Header{}
		tc.c.Apply(h)
		if got := h.Get(tc.header); got != tc.value {
			t.Errorf("%s: header %s = %q, want %q", tc.c, tc.header, got, tc.value)
		}
		if tok, typ := tc.c.AccessToken(); tok != tc.token || typ != tc.tokenType {
			t.Errorf("%s: token view %q %q", tc.c, tok, typ)
		}
	}
}

func TestRedaction(t *testing.T) {
	c, _ := Parse(TypeAPIKey, bearerSpec(), map[string]string{"api_key": key})
	b, _ := Parse(TypeBasic, Spec{}, map[string]string{"username": "user-name-1", "password": "pw-secret-1"})
	var logs strings.Builder
	l := slog.New(slog.NewJSONHandler(&logs, nil))
	l.Info("x", "cred", c, "basic", b)
	for _, out := range []string{fmt.Sprint(c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v %+v", b, b), logs.String()} {
		for _, secret := range []string{key, "user-name-1", "pw-secret-1"} {
			if strings.Contains(out, secret) {
				t.Fatalf("%q shows a secret", out)
			}
		}
	}
}

func TestVerify(t *testing.T) {
	var seen http.Header
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"error":"bad key ` + r.Header.Get("Authorization") + `"}`))
	}))
	defer srv.Close()
	c, _ := Parse(TypeAPIKey, bearerSpec(), map[string]string{"api_key": key})
	v := Verification{Method: http.MethodGet, URL: srv.URL + "/v1/models", Headers: map[string]string{"Api-Version": "2"}}
	if err := Verify(context.Background(), srv.Client(), v, c); err != nil {
		t.Fatalf("accepted key: %v", err)
	}
	if seen.Get("Authorization") != "Bearer "+key || seen.Get("Api-Version") != "2" {
		t.Fatalf("verification request headers: %v", seen)
	}
	status = http.StatusUnauthorized
	err := Verify(context.Background(), srv.Client(), v, c)
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Status != 401 {
		t.Fatalf("refused key: %v", err)
	}
	if strings.Contains(err.Error(), key) {
		t.Fatalf("error shows the key: %v", err)
	}
	// A redirect is an answer, not a hop: with the nil client the key
	// never follows it.
	status = http.StatusFound
	if err := Verify(context.Background(), nil, v, c); !errors.As(err, &refused) || refused.Status != http.StatusFound {
		t.Fatalf("redirect: %v", err)
	}
	status = http.StatusServiceUnavailable
	if err := Verify(context.Background(), srv.Client(), v, c); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("provider failing: %v, want ErrUnreachable (the key was not judged)", err)
	}
	srv.Close()
	if err := Verify(context.Background(), srv.Client(), v, c); !errors.Is(err, ErrUnreachable) || strings.Contains(err.Error(), key) {
		t.Fatalf("provider down: %v", err)
	}
}
