package config

import "errors"

// Serve is the configuration of dromos serve: the broker's, and the
// gateway's agent-facing part. The gateway calls the broker in process, so
// it has no broker URL or key; it shares the broker's state keys,
// LISTEN_HOST, MAX_CONNECTIONS (one cap for the process) and LOG_LEVEL.
type Serve struct {
	Broker  Broker
	Gateway Gateway
}

// ServeVars documents the variables LoadServe reads besides BrokerVars.
const ServeVars = `  GATEWAY_PORT             the gateway's HTTP listen port (default 8090)
  GATEWAY_PORT_GRPC        the gateway's gRPC listen port (default 9090)
  GATEWAY_API_KEYS         agents' keys: client-name:key or client-name:sha256:HEX, comma-separated,
                           each optionally followed by ;option (docs/GATEWAY.md, Agent options)
  GATEWAY_ALLOW_ANONYMOUS  true to run without GATEWAY_API_KEYS (anyone may call; development only)
  GATEWAY_RATE_LIMIT       requests per second per agent (per address when anonymous), bursts of twice that; 0 off (default)
  GATEWAY_CONSENT_RATE_LIMIT  connection requests per minute per agent (per address when anonymous),
                           bursts of as many; 0 off (default 60)
  (PORT is the broker's listener; LISTEN_HOST, MAX_CONNECTIONS, STATE_KEY(S), DROMOS_ENV and
  LOG_LEVEL apply to both; BROKER_BASE_URL and BROKER_API_KEY are not used)
`

// LoadServe reads dromos serve's configuration from env, reporting the
// broker's and the gateway's problems together.
func LoadServe(env Env) (Serve, error) {
	var probs Problems
	b, err := LoadBroker(env)
	var bp Problems
	if errors.As(err, &bp) {
		probs = append(probs, bp...)
	} else if err != nil {
		return Serve{}, err
	}
	r := reader{env: env, errs: &probs}
	g := Gateway{
		Port:           r.port("GATEWAY_PORT", 8090),
		GRPCPort:       r.port("GATEWAY_PORT_GRPC", 9090),
		ListenHost:     b.ListenHost,
		StateKeys:      b.StateKeys,
		MaxConnections: b.MaxConnections,
		LogLevel:       b.LogLevel,
	}
	r.agents(&g)
	ports := map[string]int{"PORT": b.Port, "GATEWAY_PORT": g.Port, "GATEWAY_PORT_GRPC": g.GRPCPort}
	for _, pair := range [][2]string{{"PORT", "GATEWAY_PORT"}, {"PORT", "GATEWAY_PORT_GRPC"}, {"GATEWAY_PORT", "GATEWAY_PORT_GRPC"}} {
		if p := ports[pair[0]]; p != 0 && p == ports[pair[1]] {
			probs.add("%s and %s must differ (both %d)", pair[0], pair[1], p)
		}
	}
	return Serve{Broker: b, Gateway: g}, probs.err()
}
