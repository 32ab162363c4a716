package storage

import (
	"slices"
	"testing"
	"time"
)

func TestClassifyLifecycle(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	conn := func(st ConnectionStatus, f ...func(*Connection)) *Connection {
		c := &Connection{ID: "c", Status: st, Scopes: []string{"a", "b"}, LastRefreshAt: t0}
		for _, fn := range f {
			fn(c)
		}
		return c
	}
	failing := func(c *Connection) { c.LastErrorClass = "transient" }
	refreshed := func(c *Connection) { c.LastRefreshAt = t0.Add(time.Minute) }
	moreScopes := func(c *Connection) { c.Scopes = []string{"b", "a", "c"} }
	for _, tc := range []struct {
		name       string
		prev, next *Connection
		want       []LifecycleType
	}{
		{"consent completed", conn(StatusExchanging), conn(StatusActive), []LifecycleType{LifecycleActive}},
		{"reconnected after expiry", conn(StatusExchanging), conn(StatusActive), []LifecycleType{LifecycleActive}},
		{"consent denied", conn(StatusPending), conn(StatusFailed), []LifecycleType{LifecycleFailed}},
		{"exchange failed", conn(StatusExchanging), conn(StatusFailed), []LifecycleType{LifecycleFailed}},
		{"refresh found the grant dead", conn(StatusActive), conn(StatusExpired), []LifecycleType{LifecycleReauthRequired}},
		{"recovered", conn(StatusActive, failing), conn(StatusActive, refreshed), []LifecycleType{LifecycleRecovered}},
		{"error cleared without a refresh", conn(StatusActive, failing), conn(StatusActive), nil},
		{"step-up completed", conn(StatusActive), conn(StatusActive, moreScopes), []LifecycleType{LifecycleScopesChanged}},
		{"same scopes in another order", conn(StatusActive), conn(StatusActive, func(c *Connection) { c.Scopes = []string{"b", "a"} }), nil},
		{"recovered with new scopes", conn(StatusActive, failing), conn(StatusActive, refreshed, moreScopes),
			[]LifecycleType{LifecycleRecovered, LifecycleScopesChanged}},
		{"transient failure stored", conn(StatusActive), conn(StatusActive, failing), nil},
		{"reconnect starts", conn(StatusExpired), conn(StatusPending), nil},
		{"deletion's first step", conn(StatusActive), conn(StatusRevoked), nil},
		{"pending expired to expired is no reauth", conn(StatusPending), conn(StatusExpired), nil},
		{"deleted", conn(StatusRevoked), nil, []LifecycleType{LifecycleDeleted}},
		{"created pending", nil, conn(StatusPending), nil},
		{"created active", nil, conn(StatusActive), []LifecycleType{LifecycleActive}},
		{"nothing", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ClassifyLifecycle(tc.prev, tc.next); !slices.Equal(got, tc.want) {
				t.Errorf("ClassifyLifecycle = %v, want %v", got, tc.want)
			}
		})
	}
}
