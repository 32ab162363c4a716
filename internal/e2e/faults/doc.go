// Package faults is the replica and fault suite: it runs real `dromos
// broker` and `dromos gateway` processes against PostgreSQL and a fake
// provider served by the test process, and proves the claims about many
// processes that in-process tests cannot: exactly one refresh across
// replicas, consents finished on another replica, no stuck or lost
// connection when a broker is killed with SIGKILL mid-refresh or
// mid-callback, service through a PostgreSQL outage, and tokens served
// through provider trouble. It holds tests only.
package faults
