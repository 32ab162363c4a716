package config

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/dromos-dev/dromos/internal/database"
	"github.com/dromos-dev/dromos/internal/returnurl"
	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/tracing"
	"github.com/dromos-dev/dromos/internal/vault"
)

// Broker is the broker's configuration.
type Broker struct {
	Port         int
	ListenHost   string // "" = all interfaces
	BaseURL      string // public URL, no trailing slash
	RedirectPath string
	DatabaseURL  string

	EncryptionKeys []vault.Key // first is primary
	StateKeys      []state.Key // first is primary

	APIKeys              [][32]byte // SHA-256 of accepted keys
	RequireAPIKey        bool
	RequireAllowlist     bool
	AllowedCIDRs         []netip.Prefix
	TrustedProxies       []netip.Prefix
	CallbackRate         int // per client IP per minute on /auth/start + callback; 0 off
	ConsentRate          int // per client IP per minute on consent creation; 0 off
	EnforceReturnURL     bool
	AllowedReturnDomains []string
	ExposeRefreshToken   bool
	// ExposeIDToken puts the id_token in every token answer (otherwise
	// only for callers asking, such as agents with the id-token option).
	ExposeIDToken bool
	// InsecureSkipBrowserBinding turns off the flow cookie (see broker).
	InsecureSkipBrowserBinding bool
	AuditRetention             time.Duration
	// MaxConnections caps open client connections; 0 derives it from
	// the open-file limit.
	MaxConnections      int
	MaxPendingPerClient int           // pending connections per client; 0 off
	ConnectionRetention time.Duration // purge never-active failures after; 0 keeps
	// Webhook delivery: the per-attempt timeout, a cap on each retry wait
	// (0 keeps the documented ~24 h schedule), and how long an endpoint
	// may fail before it is disabled.
	WebhookTimeout      time.Duration
	WebhookRetryMaxWait time.Duration
	WebhookDisableAfter time.Duration
	// RefreshAheadReadWindow: the worker refreshes ahead only connections
	// read within it; the others are refreshed when next read.
	RefreshAheadReadWindow time.Duration
	// TokenCacheStaleness bounds how long a change another replica made to
	// a connection or its token can go unseen by this replica's token
	// cache (internal/tokencache); 0 turns the cache off.
	TokenCacheStaleness time.Duration
	LogLevel            slog.Level
	// Production is DROMOS_ENV=production: insecure settings refuse to start.
	Production bool
	// MCPClientMetadataURL is where the broker's Client ID Metadata
	// Document is published ("" turns it off): the client_id it uses at
	// MCP authorization servers that support such documents.
	MCPClientMetadataURL string
	// Tracing is the OpenTelemetry export (OTEL_* variables); off when no
	// endpoint is set.
	Tracing tracing.Config
	// Revocation says how long and how often a failed revocation at a
	// provider is retried.
	Revocation Revocation
}

// Revocation tunes the retries of revocations at providers.
type Revocation struct {
	RetryPeriod time.Duration // REVOCATION_RETRY_PERIOD
	MinBackoff  time.Duration // REVOCATION_MIN_BACKOFF
	MaxBackoff  time.Duration // REVOCATION_MAX_BACKOFF
}

// MCPClientMetadataPath is where the broker serves its Client ID Metadata
// Document.
const MCPClientMetadataPath = "/mcp/client-metadata.json"

// RedirectURI is the callback URL registered at providers.
func (b Broker) RedirectURI() string { return b.BaseURL + b.RedirectPath }

// BrokerVars documents the variables LoadBroker reads (for --help).
const BrokerVars = `  PORT                    listen port (default 8080)
  LISTEN_HOST             address to bind (default: every interface)
  BASE_URL                public URL of the broker (default http://localhost:PORT)
  REDIRECT_PATH           callback path (default /auth/callback)
  DATABASE_URL            postgres://… or sqlite:PATH (default sqlite:dromos.db)
  ENCRYPTION_KEY          base64 32-byte AES-256-GCM key for secrets at rest (required)
  ENCRYPTION_KEYS         ID:BASE64,… several keys, first primary (replaces ENCRYPTION_KEY)
  STATE_KEY               base64 32 bytes, seed of the Ed25519 key that signs state (required); the
                          gateway gets only its public key (STATE_PUBLIC_KEYS, from 'dromos state-public-keys')
  STATE_KEYS              ID:BASE64,… several keys, first primary (replaces STATE_KEY)
  API_KEY, API_KEYS       key(s) callers present (plain, 16+ characters, or sha256:HEX; comma-separated)
  REQUIRE_API_KEY         require a key on every route but callback/health/ready/metrics (default:
                          true when API_KEY or API_KEYS is set; false with keys set refuses to start)
  REQUIRE_ALLOWLIST       true to accept those routes only from ALLOWED_CIDRS
  ALLOWED_CIDRS           comma-separated CIDRs
  TRUSTED_PROXIES         CIDRs of reverse proxies whose X-Forwarded-For/Forwarded are believed
  RATE_LIMIT_CALLBACK     per client IP per minute on /auth/start and the callback (default 20; 0 off)
  RATE_LIMIT_CONSENT      per client IP per minute on consent creation (default 600; 0 off)
  ENFORCE_RETURN_URL      true to accept only return URLs on ALLOWED_RETURN_DOMAINS
  ALLOWED_RETURN_DOMAINS  comma-separated origins [http(s)://]host[:port]; *.example.com is one more
                          label, **.example.com any depth; without a port, the default one (any on loopback)
  EXPOSE_REFRESH_TOKEN    true to include refresh_token in token answers (default false)
  EXPOSE_ID_TOKEN         true to include the provider's id_token in every token answer (default false:
                          only for gateway agents with the id-token option)
  INSECURE_SKIP_BROWSER_BINDING  true to hand out provider URLs directly and accept
                          callbacks from any browser (MUST NOT be used where an authUrl can leak)
  DROMOS_ENV              production refuses to start on insecure settings (lists them all)
  AUDIT_RETENTION         how long audit events are kept (default 2160h = 90 days; 0 keeps them)
  MAX_CONNECTIONS         most client connections open at once; when full the least recently active one
                          is closed (default: from the open-file limit, see docs)
  MAX_PENDING_PER_CLIENT  connections one client may have waiting for consent (default 100; 0 off)
  CONNECTION_RETENTION    connections that failed before ever being active are deleted this long
                          after their last change (default 168h = 7 days; 0 keeps them)
  WEBHOOK_TIMEOUT         bound on one webhook delivery attempt (default 10s)
  WEBHOOK_RETRY_MAX_WAIT  cap on each wait between webhook retries (default 0: the ~24h schedule)
  WEBHOOK_DISABLE_AFTER   disable a webhook endpoint failing this long (default 120h; 0 never)
  REFRESH_AHEAD_READ_WINDOW  refresh tokens ahead of expiry only for connections read within this
                          (default 1h, one lifetime of the usual access token); others refresh on read
  TOKEN_CACHE_STALENESS   token reads are served from an in-memory cache of sealed token rows, checked
                          against the database so that a change made by another replica (refresh,
                          revocation, deletion, key rotation) is never served later than this
                          (default 500ms, at most 10s; 0 turns the cache off)
  LOG_LEVEL               debug, info, warn or error (default info)
  REVOCATION_RETRY_PERIOD how long a revocation the provider failed is retried (default 72h)
  REVOCATION_MIN_BACKOFF  wait after the first failed revocation, doubling (default 30s)
  REVOCATION_MAX_BACKOFF  longest wait between revocation attempts (default 1h)
  MCP_CLIENT_METADATA_URL URL of the broker's OAuth Client ID Metadata Document for MCP servers
                          (default BASE_URL/mcp/client-metadata.json when BASE_URL is https; "off" disables)
`

// LoadBroker reads the broker's configuration from env.
func LoadBroker(env Env) (Broker, error) {
	var probs Problems
	r := reader{env: env, errs: &probs}
	b := Broker{
		Port:                       r.port("PORT", 8080),
		ListenHost:                 r.str("LISTEN_HOST", ""),
		RedirectPath:               r.str("REDIRECT_PATH", "/auth/callback"),
		DatabaseURL:                r.str("DATABASE_URL", "sqlite:dromos.db"),
		RequireAllowlist:           r.boolean("REQUIRE_ALLOWLIST", false),
		AllowedCIDRs:               r.cidrs("ALLOWED_CIDRS"),
		TrustedProxies:             r.cidrs("TRUSTED_PROXIES"),
		CallbackRate:               r.count("RATE_LIMIT_CALLBACK", 20),
		ConsentRate:                r.count("RATE_LIMIT_CONSENT", 600),
		EnforceReturnURL:           r.boolean("ENFORCE_RETURN_URL", false),
		ExposeRefreshToken:         r.boolean("EXPOSE_REFRESH_TOKEN", false),
		ExposeIDToken:              r.boolean("EXPOSE_ID_TOKEN", false),
		InsecureSkipBrowserBinding: r.boolean("INSECURE_SKIP_BROWSER_BINDING", false),
		AuditRetention:             r.duration("AUDIT_RETENTION", 90*24*time.Hour),
		MaxPendingPerClient:        r.count("MAX_PENDING_PER_CLIENT", 100),
		ConnectionRetention:        r.duration("CONNECTION_RETENTION", 168*time.Hour),
		AllowedReturnDomains:       r.list("ALLOWED_RETURN_DOMAINS"),
		MaxConnections:             r.count("MAX_CONNECTIONS", 0),
		RefreshAheadReadWindow:     r.duration("REFRESH_AHEAD_READ_WINDOW", time.Hour),
		TokenCacheStaleness:        r.duration("TOKEN_CACHE_STALENESS", 500*time.Millisecond),
		WebhookTimeout:             r.duration("WEBHOOK_TIMEOUT", 10*time.Second),
		WebhookRetryMaxWait:        r.duration("WEBHOOK_RETRY_MAX_WAIT", 0),
		WebhookDisableAfter:        r.duration("WEBHOOK_DISABLE_AFTER", 120*time.Hour),
		Revocation: Revocation{
			RetryPeriod: r.duration("REVOCATION_RETRY_PERIOD", 72*time.Hour),
			MinBackoff:  r.duration("REVOCATION_MIN_BACKOFF", 30*time.Second),
			MaxBackoff:  r.duration("REVOCATION_MAX_BACKOFF", time.Hour),
		},
	}
	if rv := b.Revocation; rv.RetryPeriod <= 0 || rv.MinBackoff <= 0 || rv.MaxBackoff < rv.MinBackoff {
		probs.add("REVOCATION_RETRY_PERIOD and REVOCATION_MIN_BACKOFF must be positive and REVOCATION_MAX_BACKOFF at least REVOCATION_MIN_BACKOFF")
	}
	if b.WebhookTimeout == 0 || b.WebhookTimeout > 5*time.Minute {
		probs.add("WEBHOOK_TIMEOUT must be a duration from 1ms to 5m")
	}
	b.BaseURL = r.absURL("BASE_URL", r.str("BASE_URL", fmt.Sprintf("http://localhost:%d", b.Port)))
	switch v := r.str("MCP_CLIENT_METADATA_URL", ""); {
	case v == "off":
	case v != "":
		b.MCPClientMetadataURL = r.absURL("MCP_CLIENT_METADATA_URL", v)
	case strings.HasPrefix(b.BaseURL, "https://"):
		b.MCPClientMetadataURL = b.BaseURL + MCPClientMetadataPath
	}
	if b.RefreshAheadReadWindow <= 0 {
		probs.add("REFRESH_AHEAD_READ_WINDOW must be a positive duration such as 1h")
	}
	if b.TokenCacheStaleness < 0 || b.TokenCacheStaleness > 10*time.Second {
		probs.add("TOKEN_CACHE_STALENESS must be a duration from 0 (off) to 10s")
	}
	if msg := redirectPathProblem(b.RedirectPath); msg != "" {
		probs.add("REDIRECT_PATH %s", msg)
	}
	if len(b.AllowedReturnDomains) > 0 {
		// Checked whether or not ENFORCE_RETURN_URL is on: a list that
		// would be refused later should be refused now.
		if err := (returnurl.Policy{AllowedDomains: b.AllowedReturnDomains}).Validate(); err != nil {
			probs.add("ALLOWED_RETURN_DOMAINS: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
	}
	b.APIKeys = append(r.apiKeyHashes("API_KEY"), r.apiKeyHashes("API_KEYS")...)
	// Configuring keys means requiring them: a broker that holds keys but
	// lets callers in without one protects nothing, tokens included.
	keysSet := r.str("API_KEY", "") != "" || r.str("API_KEYS", "") != ""
	b.RequireAPIKey = r.boolean("REQUIRE_API_KEY", keysSet)
	if keysSet && r.str("REQUIRE_API_KEY", "") != "" && !b.RequireAPIKey {
		probs.add("REQUIRE_API_KEY=false with API_KEY or API_KEYS set: configured keys are always required; unset REQUIRE_API_KEY, or unset the keys to run the broker open")
	}

	// On success both lists hold at least one key: the first is primary.
	b.EncryptionKeys = toVaultKeys(r.requiredIDKeys("ENCRYPTION_KEYS", "ENCRYPTION_KEY", "generate one with `dromos keygen`"))
	b.StateKeys = toStateKeys(r.requiredIDKeys("STATE_KEYS", "STATE_KEY", "generate one with `dromos keygen`"))
	// One secret for both would let whoever holds the state key (a
	// gateway configured the old way) open every sealed token.
	for _, sk := range b.StateKeys {
		for _, ek := range b.EncryptionKeys {
			if subtle.ConstantTimeCompare(sk.Secret, ek.Secret[:]) == 1 {
				probs.add("state key %d equals encryption key %d: STATE_KEY(S) and ENCRYPTION_KEY(S) must be different keys (`dromos keygen`)", sk.ID, ek.ID)
			}
		}
	}

	if b.RequireAPIKey && len(b.APIKeys) == 0 {
		r.needs("REQUIRE_API_KEY=true", "API_KEY", "API_KEYS")
	}
	if b.RequireAllowlist && len(b.AllowedCIDRs) == 0 {
		r.needs("REQUIRE_ALLOWLIST=true", "ALLOWED_CIDRS")
	}
	if b.EnforceReturnURL && len(b.AllowedReturnDomains) == 0 {
		probs.add("ENFORCE_RETURN_URL=true needs ALLOWED_RETURN_DOMAINS")
	}
	lvl, err := parseLevel(r.str("LOG_LEVEL", "info"))
	if err != nil {
		probs.add("LOG_LEVEL must be debug, info, warn or error")
	}
	b.LogLevel = lvl
	b.Tracing = r.tracing()
	b.Production = r.production()
	if b.Production {
		probs = append(probs, b.productionProblems()...)
	}
	return b, probs.err()
}

// productionProblems lists every setting DROMOS_ENV=production refuses.
func (b Broker) productionProblems() Problems {
	var p Problems
	if !strings.HasPrefix(b.BaseURL, "https://") {
		p.add("DROMOS_ENV=production: BASE_URL must be https")
	}
	if !b.RequireAPIKey {
		p.add("DROMOS_ENV=production: REQUIRE_API_KEY must be true")
	}
	if !b.EnforceReturnURL {
		p.add("DROMOS_ENV=production: ENFORCE_RETURN_URL must be true (with ALLOWED_RETURN_DOMAINS)")
	}
	if b.InsecureSkipBrowserBinding {
		p.add("DROMOS_ENV=production: INSECURE_SKIP_BROWSER_BINDING must not be set")
	}
	// The same parser that opens the database, so POSTGRES:// counts too.
	if t, err := database.Parse(b.DatabaseURL); err != nil || t.Backend != database.Postgres {
		p.add("DROMOS_ENV=production: DATABASE_URL must be PostgreSQL")
	}
	if b.MCPClientMetadataURL != "" && !strings.HasPrefix(b.MCPClientMetadataURL, "https://") {
		p.add("DROMOS_ENV=production: MCP_CLIENT_METADATA_URL must be https")
	}
	if b.ExposeRefreshToken {
		p.add("DROMOS_ENV=production: EXPOSE_REFRESH_TOKEN hands refresh tokens to agents; unset it")
	}
	return p
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

// DatabaseURL is DATABASE_URL with its default, for commands (migrate)
// that need nothing else.
func DatabaseURL(env Env) string {
	return reader{env: env, errs: new(Problems)}.str("DATABASE_URL", "sqlite:dromos.db")
}

// brokerRoutes are the broker's own path prefixes; the callback path may
// not take one of them (the router would refuse to start).
var brokerRoutes = []string{"/health", "/ready", "/metrics", "/providers", "/connections", "/audit", "/catalog",
	"/auth/consent-spec", "/auth/start"}

var redirectPathRE = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+$`)

// redirectPathProblem says what is wrong with a callback path ("" if
// nothing): an absolute path of plain segments, not one of the broker's
// own routes.
func redirectPathProblem(p string) string {
	if !redirectPathRE.MatchString(p) || strings.Contains(p, "/./") || strings.Contains(p, "/../") ||
		strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..") {
		return "must be an absolute path of plain segments (letters, digits, '.', '_', '~', '-'), e.g. /auth/callback"
	}
	for _, r := range brokerRoutes {
		if p == r || strings.HasPrefix(p, r+"/") {
			return "must not be one of the broker's own routes (" + r + ")"
		}
	}
	return ""
}
