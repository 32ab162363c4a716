// Package agentpolicy is what one gateway agent may do beyond holding a key:
// the options written after the key on its GATEWAY_API_KEYS entries
// ("name:key;proxy-only;providers=google|github"). It parses and compares
// them; the gateway enforces each option where the request it governs is
// handled. A pure package: no I/O.
package agentpolicy
