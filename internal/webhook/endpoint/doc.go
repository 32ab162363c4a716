// Package endpoint manages webhook endpoints: registering one (its URL
// judged by the SSRF guard, a fresh whsec_ secret sealed by the vault with
// the endpoint id as additional data), listing, deleting, rotating the
// secret (the previous one keeps signing for a rotation window),
// re-enabling one the dispatcher disabled, and the deliveries log with its
// retry. Every call is scoped: an agent (gateway client) sees only its own
// endpoints; an operator, calling the broker directly, also manages the
// global endpoints that receive every connection's events.
//
// Routes mounts the broker's internal API for all of it. A secret leaves
// the package in clear only in the answer that creates or rotates it.
package endpoint
