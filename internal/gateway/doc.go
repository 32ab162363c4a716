// Package gateway is the authenticated front door agents talk to: the frozen
// v1 REST contract (api/openapi.yaml) and the dromos.v1.Gateway gRPC service
// (api/proto/dromos/v1), both served from one implementation of the
// operations that calls the broker through brokerclient.
//
// The gateway stores nothing. It authenticates agents with API keys (kept
// only as SHA-256 hashes), scopes every connection to the client that asked
// for it, verifies the state the broker signs before it hands an agent a
// connection id, and passes token bodies from broker to agent without
// logging them. Reading the environment and running listeners is the CLI's
// job; this package receives a Config and Deps.
package gateway
