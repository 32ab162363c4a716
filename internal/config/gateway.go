package config

import (
	"log/slog"

	"github.com/dromos-dev/dromos/internal/gateway"
	"github.com/dromos-dev/dromos/internal/proxy"
	"github.com/dromos-dev/dromos/internal/state"
	"github.com/dromos-dev/dromos/internal/tracing"
)

// Gateway is the gateway's configuration.
type Gateway struct {
	Port          int
	GRPCPort      int
	ListenHost    string
	BrokerBaseURL string
	BrokerAPIKey  string
	// StatePublicKeys verify states (STATE_PUBLIC_KEYS); StateKeys is the
	// broker's seed given instead (STATE_KEY/STATE_KEYS), from which the
	// gateway derives them.
	StatePublicKeys []state.PublicKey
	StateKeys       []state.Key
	Clients         []gateway.ClientKey
	AllowAnonymous  bool
	RateLimit       int // requests per second per agent; 0 off
	// MaxConnections caps open client connections across both
	// listeners; 0 derives it from the open-file limit.
	MaxConnections int
	LogLevel       slog.Level
	// ConsentRate is connection requests per minute per agent; 0 off.
	ConsentRate int
	// Proxy is the API proxy's limits (GATEWAY_PROXY_*).
	Proxy proxy.Config
	// Tracing is the OpenTelemetry export (OTEL_* variables); off when no
	// endpoint is set.
	Tracing tracing.Config
}

// GatewayVars documents the variables LoadGateway reads (for --help).
const GatewayVars = `  PORT                     HTTP listen port (default 8090)
  PORT_GRPC                gRPC listen port (default 9090)
  LISTEN_HOST              address both listeners bind (default: every interface)
  BROKER_BASE_URL          the broker's URL (required)
  BROKER_API_KEY           key sent to the broker as X-API-Key
  STATE_PUBLIC_KEYS        ID:BASE64,… Ed25519 public keys of the broker's state keys, first primary
                           (required; printed by 'dromos keygen' and 'dromos state-public-keys')
  STATE_KEY, STATE_KEYS    instead of STATE_PUBLIC_KEYS: the broker's state key(s), from which the
                           public keys are derived (logged as a warning: the seed can sign states)
  GATEWAY_API_KEYS         agents' keys: client-name:key or client-name:sha256:HEX, comma-separated,
                           each optionally followed by ;option (docs/GATEWAY.md, Agent options)
  GATEWAY_ALLOW_ANONYMOUS  true to run without GATEWAY_API_KEYS (anyone may call; development only)
  GATEWAY_RATE_LIMIT       requests per second per agent (per address when anonymous), bursts of twice that; 0 off (default)
  MAX_CONNECTIONS          most client connections open at once over both listeners; when full the least
                           recently active one is closed (default: from the open-file limit, see docs)
  GATEWAY_CONSENT_RATE_LIMIT  connection requests per minute per agent (per address when anonymous),
                           bursts of as many; 0 off (default 60)
  GATEWAY_PROXY_MAX_REQUEST_BODY   largest request body the API proxy forwards, bytes (default 10485760)
  GATEWAY_PROXY_MAX_RESPONSE_BODY  largest provider answer it passes back, bytes (default 52428800)
  GATEWAY_PROXY_REPLAY_BODY        bodies up to this size are buffered for the one retry after a provider 401,
                           bytes (default 1048576)
  GATEWAY_PROXY_TIMEOUT    longest proxied call, both bodies included (default 60s)
  GATEWAY_PROXY_MAX_PER_AGENT  proxied calls one agent may have in flight (default 32)
  GATEWAY_PROXY_ALLOW_PRIVATE  true lets the proxy reach loopback and private addresses (refused in production)
  DROMOS_ENV               production refuses anonymous agents
  LOG_LEVEL                debug, info, warn or error (default info)
`

// LoadGateway reads the gateway's configuration from env.
func LoadGateway(env Env) (Gateway, error) {
	var probs Problems
	r := reader{env: env, errs: &probs}
	g := Gateway{
		Port:           r.port("PORT", 8090),
		GRPCPort:       r.port("PORT_GRPC", 9090),
		ListenHost:     r.str("LISTEN_HOST", ""),
		BrokerAPIKey:   r.str("BROKER_API_KEY", ""),
		MaxConnections: r.count("MAX_CONNECTIONS", 0),
	}
	if v := r.str("BROKER_BASE_URL", ""); v == "" {
		probs.add("BROKER_BASE_URL is required")
	} else {
		g.BrokerBaseURL = r.absURL("BROKER_BASE_URL", v)
	}
	if r.str("STATE_PUBLIC_KEYS", "") != "" {
		g.StatePublicKeys = toStatePublicKeys(r.requiredIDKeys("STATE_PUBLIC_KEYS", "STATE_PUBLIC_KEYS", ""))
		if r.str("STATE_KEY", "") != "" || r.str("STATE_KEYS", "") != "" {
			probs.add("STATE_KEY/STATE_KEYS must not be set with STATE_PUBLIC_KEYS: the gateway needs only the public keys")
		}
	} else if r.str("STATE_KEY", "") != "" || r.str("STATE_KEYS", "") != "" {
		g.StateKeys = toStateKeys(r.requiredIDKeys("STATE_KEYS", "STATE_KEY", ""))
	} else {
		probs.add("STATE_PUBLIC_KEYS is required (the broker's state public keys: run 'dromos state-public-keys' with the broker's STATE_KEY or STATE_KEYS)")
	}
	r.agents(&g)
	// A production broker always requires an API key: without one every
	// call would fail 502.
	if r.production() && g.BrokerAPIKey == "" {
		probs.add("DROMOS_ENV=production: BROKER_API_KEY is required (production brokers require an API key)")
	}
	lvl, lerr := parseLevel(r.str("LOG_LEVEL", "info"))
	if lerr != nil {
		probs.add("LOG_LEVEL must be debug, info, warn or error")
	}
	g.LogLevel = lvl
	g.Tracing = r.tracing()
	return g, probs.err()
}

// agents reads what the gateway knows of agents (GATEWAY_* keys and
// limits) into g, for dromos gateway and dromos serve alike.
func (r reader) agents(g *Gateway) {
	g.AllowAnonymous = r.boolean("GATEWAY_ALLOW_ANONYMOUS", false)
	g.RateLimit = r.count("GATEWAY_RATE_LIMIT", 0)
	g.ConsentRate = r.count("GATEWAY_CONSENT_RATE_LIMIT", 60)
	g.Proxy = proxy.Config{
		MaxRequestBody:  int64(r.count("GATEWAY_PROXY_MAX_REQUEST_BODY", proxy.DefaultMaxRequestBody)),
		MaxResponseBody: int64(r.count("GATEWAY_PROXY_MAX_RESPONSE_BODY", proxy.DefaultMaxResponseBody)),
		MaxReplayBody:   int64(r.count("GATEWAY_PROXY_REPLAY_BODY", proxy.DefaultMaxReplayBody)),
		Timeout:         r.duration("GATEWAY_PROXY_TIMEOUT", proxy.DefaultTimeout),
		MaxPerAgent:     r.count("GATEWAY_PROXY_MAX_PER_AGENT", proxy.DefaultMaxPerAgent),
		AllowPrivate:    r.boolean("GATEWAY_PROXY_ALLOW_PRIVATE", false),
	}
	clients, err := gateway.ParseClientKeys(r.str("GATEWAY_API_KEYS", ""))
	if err != nil {
		r.errs.add("GATEWAY_API_KEYS: %v", err)
	}
	g.Clients = clients
	if len(g.Clients) == 0 && !g.AllowAnonymous && err == nil {
		r.errs.add("GATEWAY_API_KEYS is empty: set it, or GATEWAY_ALLOW_ANONYMOUS=true to let anyone in")
	}
	if r.production() {
		if g.AllowAnonymous {
			r.errs.add("DROMOS_ENV=production: GATEWAY_ALLOW_ANONYMOUS must not be set")
		}
		if g.Proxy.AllowPrivate {
			r.errs.add("DROMOS_ENV=production: GATEWAY_PROXY_ALLOW_PRIVATE must not be set (the API proxy must not reach internal addresses)")
		}
		// A GATEWAY_API_KEYS that failed to parse is reported above, not
		// as missing.
		if len(g.Clients) == 0 && err == nil {
			r.needs("DROMOS_ENV=production", "GATEWAY_API_KEYS")
		}
	}
}
