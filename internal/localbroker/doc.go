// Package localbroker lets a gateway call a broker in its own process
// (dromos serve) through the gateway's Broker interface, the one
// brokerclient implements over HTTP, with no network hop.
//
// Token reads and refreshes, the hot path, take the broker's answer as Go
// values: no request is encoded, no socket crossed, no JSON written or
// parsed but a provider's extra members. The other calls (consent, the
// connection record and listing, providers, catalog, deletion) go through
// brokerclient and the broker's HTTP handler in memory, which keeps one
// implementation of each but still encodes their JSON. Either way agents
// see what brokerclient gives them for the same broker answer over HTTP:
// the same tokens, the same error envelopes and codes.
package localbroker
