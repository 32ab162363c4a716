package discovery

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestFetch(t *testing.T) {
	tests := []struct {
		name string
		tls  bool
		// setup installs routes and returns the issuer to discover.
		setup    func(s *server) string
		maxBody  int64
		wantErr  error
		wantText string // must appear in the error message
		check    func(t *testing.T, s *server, md Metadata)
	}{
		{
			name: "happy path",
			setup: func(s *server) string {
				s.route(openIDSuffix, serveJSON(document(s.URL)))
				return s.URL
			},
			check: func(t *testing.T, s *server, md Metadata) {
				want := Metadata{
					Issuer:                                     s.URL,
					AuthorizationEndpoint:                      s.URL + "/authorize",
					TokenEndpoint:                              s.URL + "/token",
					JWKSURI:                                    s.URL + "/jwks",
					UserinfoEndpoint:                           s.URL + "/userinfo",
					RevocationEndpoint:                         s.URL + "/revoke",
					ScopesSupported:                            []string{"openid", "email"},
					ResponseTypesSupported:                     []string{"code"},
					IDTokenSigningAlgValuesSupported:           []string{"RS256", "ES256"},
					CodeChallengeMethodsSupported:              []string{"S256"},
					TokenEndpointAuthMethodsSupported:          []string{"client_secret_basic", "client_secret_post"},
					AuthorizationResponseIssParameterSupported: true,
				}
				if !reflect.DeepEqual(md, want) {
					t.Errorf("metadata\n got %+v\nwant %+v", md, want)
				}
			},
		},
		{
			name: "issuer with path",
			setup: func(s *server) string {
				s.route("/realms/a"+openIDSuffix, serveJSON(document(s.URL+"/realms/a")))
				return s.URL + "/realms/a"
			},
		},
		{
			name: "issuer mismatch by a trailing slash",
			setup: func(s *server) string {
				s.route(openIDSuffix, serveJSON(document(s.URL+"/")))
				return s.URL
			},
			wantErr:  ErrIssuerMismatch,
			wantText: "configured issuer",
		},
		{
			name: "issuer of another provider",
			setup: func(s *server) string {
				doc := document(s.URL)
				doc["issuer"] = "https://evil.example"
				s.route(openIDSuffix, serveJSON(doc))
				return s.URL
			},
			wantErr: ErrIssuerMismatch,
		},
		{
			name: "missing token_endpoint",
			setup: func(s *server) string {
				doc := document(s.URL)
				delete(doc, "token_endpoint")
				s.route(openIDSuffix, serveJSON(doc))
				return s.URL
			},
			wantErr:  ErrMissingEndpoint,
			wantText: "token_endpoint",
		},
		{
			name: "missing authorization_endpoint",
			setup: func(s *server) string {
				doc := document(s.URL)
				doc["authorization_endpoint"] = ""
				s.route(openIDSuffix, serveJSON(doc))
				return s.URL
			},
			wantErr:  ErrMissingEndpoint,
			wantText: "authorization_endpoint",
		},
		{
			name: "relative token endpoint",
			setup: func(s *server) string {
				doc := document(s.URL)
				doc["token_endpoint"] = "/token"
				s.route(openIDSuffix, serveJSON(doc))
				return s.URL
			},
			wantErr:  ErrInvalidEndpoint,
			wantText: "token_endpoint",
		},
		{
			name: "javascript jwks_uri",
			setup: func(s *server) string {
				doc := document(s.URL)
				doc["jwks_uri"] = "javascript:alert(1)"
				s.route(openIDSuffix, serveJSON(doc))
				return s.URL
			},
			wantErr:  ErrInvalidEndpoint,
			wantText: "jwks_uri",
		},
		{
			name: "https issuer downgrading the token endpoint to http",
			tls:  true,
			setup: func(s *server) string {
				doc := document(s.URL)
				doc["token_endpoint"] = "http://" + strings.TrimPrefix(s.URL, "https://") + "/token"
				s.route(openIDSuffix, serveJSON(doc))
				return s.URL
			},
			wantErr:  ErrInvalidEndpoint,
			wantText: "token_endpoint",
		},
		{
			name: "https issuer",
			tls:  true,
			setup: func(s *server) string {
				s.route(openIDSuffix, serveJSON(document(s.URL)))
				return s.URL
			},
		},
		{
			name: "404 falls back to RFC 8414",
			setup: func(s *server) string {
				s.route(authServerPrefix, serveJSON(document(s.URL)))
				return s.URL
			},
			check: func(t *testing.T, s *server, md Metadata) {
				if got := s.count(openIDSuffix); got != 1 {
					t.Errorf("openid-configuration requests = %d, want 1 (tried first)", got)
				}
				if md.TokenEndpoint != s.URL+"/token" {
					t.Errorf("token endpoint = %q", md.TokenEndpoint)
				}
			},
		},
		{
			name: "404 falls back to path-aware RFC 8414 URL",
			setup: func(s *server) string {
				s.route(authServerPrefix+"/tenant/one", serveJSON(document(s.URL+"/tenant/one")))
				return s.URL + "/tenant/one"
			},
			check: func(t *testing.T, s *server, md Metadata) {
				if got := s.count("/tenant/one" + openIDSuffix); got != 1 {
					t.Errorf("openid-configuration requests = %d, want 1", got)
				}
				if md.Issuer != s.URL+"/tenant/one" {
					t.Errorf("issuer = %q", md.Issuer)
				}
			},
		},
		{
			name: "both documents 404",
			setup: func(s *server) string {
				return s.URL
			},
			wantErr:  ErrHTTPStatus,
			wantText: "404",
		},
		{
			name: "500 does not fall back",
			setup: func(s *server) string {
				s.route(openIDSuffix, serveStatus(http.StatusInternalServerError))
				s.route(authServerPrefix, serveJSON(document(s.URL)))
				return s.URL
			},
			wantErr:  ErrHTTPStatus,
			wantText: "500",
			check: func(t *testing.T, s *server, _ Metadata) {
				if got := s.count(authServerPrefix); got != 0 {
					t.Errorf("RFC 8414 requests = %d, want 0", got)
				}
			},
		},
		{
			name: "not JSON, body not echoed",
			setup: func(s *server) string {
				s.route(openIDSuffix, func(w http.ResponseWriter, _ *http.Request) {
					_, _ = w.Write([]byte("<html>BODY-MARKER login page</html>"))
				})
				return s.URL
			},
			wantErr: ErrNotJSON,
		},
		{
			name: "JSON array",
			setup: func(s *server) string {
				s.route(openIDSuffix, serveJSON([]string{"BODY-MARKER"}))
				return s.URL
			},
			wantErr:  ErrNotJSON,
			wantText: "top-level",
		},
		{
			name: "field of the wrong type",
			setup: func(s *server) string {
				doc := document(s.URL)
				doc["scopes_supported"] = "BODY-MARKER"
				s.route(openIDSuffix, serveJSON(doc))
				return s.URL
			},
			wantErr:  ErrNotJSON,
			wantText: "scopes_supported",
		},
		{
			name:    "document too large",
			maxBody: 64,
			setup: func(s *server) string {
				s.route(openIDSuffix, serveJSON(document(s.URL)))
				return s.URL
			},
			wantErr: ErrTooLarge,
		},
		{
			name: "redirect not followed",
			setup: func(s *server) string {
				s.route("/elsewhere", serveJSON(document(s.URL)))
				s.route(openIDSuffix, func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, "/elsewhere", http.StatusFound)
				})
				return s.URL
			},
			wantErr:  ErrHTTPStatus,
			wantText: "redirects are not followed",
			check: func(t *testing.T, s *server, _ Metadata) {
				if got := s.count("/elsewhere"); got != 0 {
					t.Errorf("redirect target requested %d times, want 0", got)
				}
			},
		},
		{
			name: "issuer with a query",
			setup: func(s *server) string {
				return s.URL + "?tenant=a"
			},
			wantErr: ErrInvalidIssuer,
			check: func(t *testing.T, s *server, _ Metadata) {
				if got := s.count(openIDSuffix); got != 0 {
					t.Errorf("requests = %d, want none for an invalid issuer", got)
				}
			},
		},
		{
			name: "issuer without scheme",
			setup: func(s *server) string {
				return strings.TrimPrefix(s.URL, "http://")
			},
			wantErr: ErrInvalidIssuer,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, tt.tls)
			issuer := tt.setup(s)
			c := New(Options{HTTPClient: s.Client(), MaxBody: tt.maxBody})
			md, err := c.Fetch(context.Background(), issuer)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
			} else {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Fetch error = %v, want %v", err, tt.wantErr)
				}
				var de *Error
				if !errors.As(err, &de) || de.Issuer != issuer {
					t.Errorf("error %v is not an *Error for issuer %q", err, issuer)
				}
				if !strings.Contains(err.Error(), tt.wantText) {
					t.Errorf("error %q does not mention %q", err, tt.wantText)
				}
				if strings.Contains(err.Error(), "BODY-MARKER") {
					t.Errorf("error echoes the response body: %q", err)
				}
			}
			if tt.check != nil {
				tt.check(t, s, md)
			}
		})
	}
}

func TestFetchUnreachable(t *testing.T) {
	s := newServer(t, false)
	issuer := s.URL
	s.Close() // nothing listens on the port any more

	c := New(Options{})
	_, err := c.Fetch(context.Background(), issuer)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Fetch error = %v, want ErrUnreachable", err)
	}
}

func TestFetchFailureKeepsCachedCopy(t *testing.T) {
	s := newServer(t, false)
	s.route(openIDSuffix, serveJSON(document(s.URL)))
	c := New(Options{HTTPClient: s.Client()})
	ctx := context.Background()
	if _, err := c.Fetch(ctx, s.URL); err != nil {
		t.Fatal(err)
	}
	s.route(openIDSuffix, serveStatus(http.StatusBadGateway))
	if _, err := c.Fetch(ctx, s.URL); !errors.Is(err, ErrHTTPStatus) {
		t.Fatalf("second Fetch error = %v, want ErrHTTPStatus", err)
	}
	md, err := c.Get(ctx, s.URL)
	if err != nil || md.TokenEndpoint != s.URL+"/token" {
		t.Fatalf("Get after failed Fetch = %+v, %v; want the first copy", md, err)
	}
	if got := s.count(openIDSuffix); got != 2 {
		t.Errorf("requests = %d, want 2 (Get served the cached copy)", got)
	}
}

func TestAuthServerURL(t *testing.T) {
	tests := []struct{ issuer, want string }{
		{"https://as.example", "https://as.example/.well-known/oauth-authorization-server"},
		{"https://as.example/", "https://as.example/.well-known/oauth-authorization-server"},
		{"https://as.example/tenant", "https://as.example/.well-known/oauth-authorization-server/tenant"},
		{"https://as.example/tenant/", "https://as.example/.well-known/oauth-authorization-server/tenant"},
		{"https://as.example:8443/a/b", "https://as.example:8443/.well-known/oauth-authorization-server/a/b"},
		{"https://as.example/a%2Fb", "https://as.example/.well-known/oauth-authorization-server/a%2Fb"},
	}
	for _, tt := range tests {
		t.Run(tt.issuer, func(t *testing.T) {
			u, err := parseIssuer(tt.issuer)
			if err != nil {
				t.Fatal(err)
			}
			if got := authServerURL(u); got != tt.want {
				t.Errorf("authServerURL = %q, want %q", got, tt.want)
			}
		})
	}
}
