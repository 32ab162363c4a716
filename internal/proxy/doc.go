// Package proxy forwards an agent's request to a provider's API with the
// connection's access token injected, so that agents call provider APIs
// without ever holding a token.
//
// It owns three things: where a request may go (Target: the provider's
// api_base_urls and a connection's own base from provider data, and the
// path checks that keep a request under the chosen base), how it goes
// (Forwarder: header filtering, credential injection, streaming bodies
// both ways with limits, one retry after a provider 401 with a refreshed
// token, redirects handed back rather than followed, per-agent concurrency)
// and the gateway's in-memory token cache (Tokens: one broker read per
// connection until the token nears expiry, single-flight, dropped on a
// provider 401). The gateway authenticates the agent, checks the
// connection is the agent's and wires these together; this package knows
// nothing about agents' keys or the broker's API.
package proxy
