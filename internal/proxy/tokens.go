package proxy

import (
	"context"
	"sync"
	"time"

	"github.com/dromos-dev/dromos/internal/secret"
)

// Token is an access token the gateway holds in memory for the proxy.
type Token struct {
	Value secret.String
	// ExpiresAt is zero when the provider gave no expiry.
	ExpiresAt time.Time
	// Header, when set, is the connection's own rule for sending Value,
	// which then holds the header's whole value: an api_key or basic
	// connection's credential (X-Api-Key: KEY, Authorization: Basic …).
	// It replaces the provider's api_auth rule. Such a credential is never
	// refreshed: a provider 401 is passed back to the agent.
	Header string
}

// Credential reports whether t is an api_key or basic credential rather
// than an OAuth access token.
func (t Token) Credential() bool { return t.Header != "" }

// Fetch reads (or refreshes) one connection's token at the broker.
type Fetch func(ctx context.Context) (Token, error)

// Tokens is the gateway's in-memory token cache: it never writes to disk,
// keeps a token no later than its expiry minus the margin (and no longer
// than MaxAge, so that a connection deleted or revoked elsewhere is
// noticed), and runs at most one broker read or refresh per key at a
// time, the others waiting for its answer. It is safe for concurrent use.
type Tokens struct {
	margin, maxAge time.Duration
	maxEntries     int
	now            func() time.Time

	mu      sync.Mutex
	entries map[string]*tokenEntry
}

type tokenEntry struct {
	tok      Token
	until    time.Time // zero: nothing cached
	inflight *tokenCall
}

type tokenCall struct {
	done chan struct{}
	tok  Token
	err  error
}

// TokensOptions tune a Tokens cache; zero values take the defaults.
type TokensOptions struct {
	Margin     time.Duration // before expiry a token stops being served; default 60s
	MaxAge     time.Duration // longest a token is served from memory; default 5m
	MaxEntries int           // default 100000
	Now        func() time.Time
}

// NewTokens builds an empty cache.
func NewTokens(o TokensOptions) *Tokens {
	if o.Margin <= 0 {
		o.Margin = time.Minute
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 5 * time.Minute
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 100000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Tokens{margin: o.Margin, maxAge: o.MaxAge, maxEntries: o.MaxEntries, now: o.Now, entries: map[string]*tokenEntry{}}
}

// Get returns key's cached token, or reads one with fetch (once, however
// many callers ask at the same time).
func (c *Tokens) Get(ctx context.Context, key string, fetch Fetch) (Token, error) {
	return c.run(ctx, key, fetch, func(e *tokenEntry, now time.Time) bool { return now.Before(e.until) })
}

// Refresh replaces key's token with one from refresh, unless the cached
// token is no longer stale (another caller refreshed it meanwhile) or a
// refresh is already running, whose answer it then shares.
func (c *Tokens) Refresh(ctx context.Context, key string, stale secret.String, refresh Fetch) (Token, error) {
	return c.run(ctx, key, refresh, func(e *tokenEntry, now time.Time) bool {
		return now.Before(e.until) && e.tok.Value != stale
	})
}

// Drop forgets key's token (a provider 401, a deleted connection).
func (c *Tokens) Drop(key string) {
	c.mu.Lock()
	if e := c.entries[key]; e != nil {
		e.tok, e.until = Token{}, time.Time{}
		if e.inflight == nil {
			delete(c.entries, key)
		}
	}
	c.mu.Unlock()
}

// Len is how many connections have an entry (for tests and metrics).
func (c *Tokens) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *Tokens) run(ctx context.Context, key string, fetch Fetch, fresh func(*tokenEntry, time.Time) bool) (Token, error) {
	c.mu.Lock()
	e := c.entries[key]
	if e == nil {
		c.evictLocked()
		e = &tokenEntry{}
		c.entries[key] = e
	}
	if fresh(e, c.now()) {
		tok := e.tok
		c.mu.Unlock()
		return tok, nil
	}
	if call := e.inflight; call != nil {
		c.mu.Unlock()
		select {
		case <-call.done:
			return call.tok, call.err
		case <-ctx.Done():
			return Token{}, ctx.Err()
		}
	}
	call := &tokenCall{done: make(chan struct{})}
	e.inflight = call
	c.mu.Unlock()

	// The broker call runs without the caller's cancellation, so that
	// one impatient caller does not fail the others waiting on it.
	call.tok, call.err = fetch(context.WithoutCancel(ctx))

	c.mu.Lock()
	e.inflight = nil
	if call.err == nil {
		e.tok, e.until = call.tok, c.until(call.tok)
	} else {
		e.tok, e.until = Token{}, time.Time{}
	}
	if e.until.IsZero() && c.entries[key] == e {
		delete(c.entries, key)
	}
	c.mu.Unlock()
	close(call.done)
	return call.tok, call.err
}

// until is how long tok may be served from memory.
func (c *Tokens) until(tok Token) time.Time {
	now := c.now()
	u := now.Add(c.maxAge)
	if !tok.ExpiresAt.IsZero() {
		if e := tok.ExpiresAt.Add(-c.margin); e.Before(u) {
			u = e
		}
	}
	if !u.After(now) {
		return time.Time{} // too close to expiry to keep at all
	}
	return u
}

// evictLocked makes room when the cache is full: expired entries first,
// then any idle ones.
func (c *Tokens) evictLocked() {
	if len(c.entries) < c.maxEntries {
		return
	}
	now := c.now()
	for k, e := range c.entries {
		if e.inflight == nil && !now.Before(e.until) {
			delete(c.entries, k)
		}
	}
	for k, e := range c.entries {
		if len(c.entries) < c.maxEntries {
			return
		}
		if e.inflight == nil {
			delete(c.entries, k)
		}
	}
}
