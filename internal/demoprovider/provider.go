package demoprovider

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ErrInvalidOptions is wrapped by every error New returns for a bad Options
// value.
var ErrInvalidOptions = errors.New("demoprovider: invalid options")

// Default lifetimes used when the matching Options field is zero.
const (
	DefaultAccessTokenTTL  = 5 * time.Minute
	DefaultRefreshTokenTTL = 30 * 24 * time.Hour
	DefaultCodeTTL         = time.Minute
)

// pendingGrace is how much longer than a code a consent page stays usable:
// a person reads the page before approving, a client redeems a code at once.
const pendingGrace = 10 * time.Minute

// pruneInterval bounds how often expired state is swept, so a busy endpoint
// does not walk every map on every request.
const pruneInterval = 30 * time.Second

// Options configure a Provider.
type Options struct {
	// Issuer is the provider's absolute URL, e.g.
	// "http://127.0.0.1:8080/demo". Less a trailing slash, it appears
	// verbatim in tokens and in the discovery document, and every endpoint
	// lives under it; see Handler for how to mount the provider.
	Issuer string
	// ClientID and ClientSecret identify the only client the provider knows.
	ClientID     string
	ClientSecret string
	// RedirectURIs are compared with the redirect_uri parameter by exact
	// string match.
	RedirectURIs []string
	// SigningKey signs access and ID tokens (RS256). The caller persists it
	// so tokens survive a restart; when nil a 2048-bit key is generated.
	SigningKey *rsa.PrivateKey
	// AccessTokenTTL defaults to DefaultAccessTokenTTL; it also bounds the
	// ID token's lifetime.
	AccessTokenTTL time.Duration
	// RefreshTokenTTL defaults to DefaultRefreshTokenTTL and counts from
	// each rotation.
	RefreshTokenTTL time.Duration
	// CodeTTL defaults to DefaultCodeTTL.
	CodeTTL time.Duration
	// Now defaults to time.Now.
	Now func() time.Time
	// Rand defaults to crypto/rand.Reader. It feeds codes, tokens, ids and
	// key generation, so it must be cryptographically secure outside tests.
	Rand io.Reader
	// Logger defaults to a logger that discards everything.
	Logger *slog.Logger
	// StateFile, when set, keeps the refresh state — refresh token
	// families, the SHA-256 of every live or rotated refresh token, and
	// revoked access token ids — in this file, so refresh tokens and reuse
	// detection survive a restart. New loads it (a missing file is an empty
	// state; one written for another ClientID is ignored); every change is
	// written before the answer leaves, atomically, with mode 0600.
	// Plaintext tokens never reach the file. Expired entries are left out.
	// One Provider at a time may use a file. When empty, the state lives in
	// memory only.
	StateFile string
}

// Provider is an in-memory OpenID Provider. It is safe for concurrent use.
type Provider struct {
	issuer       string
	clientID     string
	secretDigest [sha256.Size]byte
	redirectURIs map[string]bool
	accessTTL    time.Duration
	refreshTTL   time.Duration
	codeTTL      time.Duration
	now          func() time.Time
	rand         io.Reader
	log          *slog.Logger
	keys         *signer
	discovery    []byte
	pages        *template.Template

	// store is nil without Options.StateFile.
	store *stateFile

	mu sync.Mutex
	st grantState
	// stateSeq numbers snapshots of st, so an older one never overwrites
	// a newer one on disk.
	stateSeq uint64
	stats    Stats
}

// Stats are counters tests and the dev command read to see what happened.
type Stats struct {
	// ConsentPagesShown counts valid authorization requests.
	ConsentPagesShown int64
	// Approvals and Denials count consent decisions.
	Approvals int64
	Denials   int64
	// AuthorizationCodeRequests, RefreshTokenRequests and OtherGrantRequests
	// count token requests from an authenticated client by grant_type,
	// whether or not they succeed.
	AuthorizationCodeRequests int64
	RefreshTokenRequests      int64
	OtherGrantRequests        int64
	// CodesExchanged counts codes successfully redeemed for tokens.
	CodesExchanged int64
	// Refreshes counts successful refresh_token grants.
	Refreshes int64
	// CodeReuses and RefreshReuses count replays that revoked a grant.
	CodeReuses    int64
	RefreshReuses int64
	// Revocations counts revocation requests that revoked something.
	Revocations int64
	// UserinfoRequests counts successful userinfo responses.
	UserinfoRequests int64
}

// New checks opts and returns a Provider. Errors wrap ErrInvalidOptions,
// except a failure to generate a signing key or to read Options.StateFile
// (ErrCorruptState when the file holds something else).
func New(opts Options) (*Provider, error) {
	issuer, err := checkIssuer(opts.Issuer)
	if err != nil {
		return nil, err
	}
	if opts.ClientID == "" {
		return nil, fmt.Errorf("%w: ClientID is empty", ErrInvalidOptions)
	}
	if opts.ClientSecret == "" {
		return nil, fmt.Errorf("%w: ClientSecret is empty", ErrInvalidOptions)
	}
	if len(opts.RedirectURIs) == 0 {
		return nil, fmt.Errorf("%w: no RedirectURIs", ErrInvalidOptions)
	}
	redirects := make(map[string]bool, len(opts.RedirectURIs))
	for _, raw := range opts.RedirectURIs {
		if err := checkRedirectURI(raw); err != nil {
			return nil, err
		}
		redirects[raw] = true
	}
	if opts.AccessTokenTTL < 0 || opts.RefreshTokenTTL < 0 || opts.CodeTTL < 0 {
		return nil, fmt.Errorf("%w: negative TTL", ErrInvalidOptions)
	}

	p := &Provider{
		issuer:       issuer,
		clientID:     opts.ClientID,
		secretDigest: sha256.Sum256([]byte(opts.ClientSecret)),
		redirectURIs: redirects,
		accessTTL:    orDefault(opts.AccessTokenTTL, DefaultAccessTokenTTL),
		refreshTTL:   orDefault(opts.RefreshTokenTTL, DefaultRefreshTokenTTL),
		codeTTL:      orDefault(opts.CodeTTL, DefaultCodeTTL),
		now:          opts.Now,
		rand:         opts.Rand,
		log:          opts.Logger,
		st:           newGrantState(),
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.rand == nil {
		p.rand = rand.Reader
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}

	key := opts.SigningKey
	if key == nil {
		key, err = rsa.GenerateKey(p.rand, 2048)
		if err != nil {
			return nil, fmt.Errorf("demoprovider: generate signing key: %w", err)
		}
	}
	if p.keys, err = newSigner(key); err != nil {
		return nil, err
	}
	if p.discovery, err = p.discoveryDocument(); err != nil {
		return nil, err
	}
	if p.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if opts.StateFile != "" {
		st, foreign, err := loadState(opts.StateFile, p.clientID, p.now())
		if err != nil {
			return nil, err
		}
		if foreign {
			p.log.Warn("demo provider: state file belongs to another client; starting without refresh tokens",
				slog.String("file", opts.StateFile))
		}
		p.st = st
		p.store = &stateFile{path: opts.StateFile}
	}
	return p, nil
}

// Handler serves the provider's endpoints relative to the issuer's path:
// it expects "/.well-known/openid-configuration", "/jwks", "/authorize",
// "/token", "/userinfo" and "/revoke". When the issuer has a path (say
// "/demo"), mount it with that prefix stripped:
//
//	mux.Handle("/demo/", http.StripPrefix("/demo", p.Handler()))
//
// Mounted anywhere else, the URLs in the discovery document and the consent
// form would not reach it.
func (p *Provider) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.handleDiscovery)
	mux.HandleFunc("GET /jwks", p.handleJWKS)
	mux.HandleFunc("GET /authorize", p.handleAuthorize)
	mux.HandleFunc("POST /authorize", p.handleAuthorizePost)
	mux.HandleFunc("POST /token", p.handleToken)
	mux.HandleFunc("GET /userinfo", p.handleUserinfo)
	mux.HandleFunc("POST /userinfo", p.handleUserinfo)
	mux.HandleFunc("POST /revoke", p.handleRevoke)
	return mux
}

// Issuer returns the normalised issuer URL (no trailing slash).
func (p *Provider) Issuer() string { return p.issuer }

// Stats returns a snapshot of the counters.
func (p *Provider) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

func (p *Provider) endpoint(path string) string { return p.issuer + path }

// randomToken returns n random bytes, base64url-encoded without padding.
func (p *Provider) randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(p.rand, b); err != nil {
		return "", fmt.Errorf("demoprovider: read random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func checkIssuer(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%w: Issuer must be an absolute http(s) URL", ErrInvalidOptions)
	}
	// OIDC Discovery 3: the issuer has no query or fragment; user info would
	// make every token carry a credential.
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%w: Issuer must not have a query, fragment or user info", ErrInvalidOptions)
	}
	return strings.TrimSuffix(raw, "/"), nil
}

func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("%w: redirect URI %q is not an absolute URL", ErrInvalidOptions, raw)
	}
	// RFC 6749 3.1.2: the redirection endpoint must not include a fragment.
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("%w: redirect URI %q has a fragment", ErrInvalidOptions, raw)
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
