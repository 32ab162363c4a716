// Package netlimit caps the connections a process holds open across all of
// its listeners, so that clients which connect and then stay silent (or
// dribble a request) cannot use up the process's file descriptors and stop
// every listener from accepting.
//
// A Limiter is shared by every listener of one process: the file limit is
// per process, so the cap is too. When a new connection arrives and the cap
// is reached, the connection that has gone longest without sending a byte
// is closed to make room. New connections are never refused for being one
// too many, so an attacker cannot pin the process full: whoever is talking
// stays, whoever is silent goes first.
//
// Activity is what a connection receives from its peer. Bytes the server
// writes (keepalive pings, a response to a client that stopped reading) do
// not count, so a silent client cannot be kept alive by the server itself.
//
// The cap defaults to a share of the process's open-file limit
// (RLIMIT_NOFILE), leaving the rest for database connections, outbound
// calls and log files; see DefaultMax and Resolve.
package netlimit
