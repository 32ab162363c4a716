package revocation

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/storage"
)

// result is what one attempt came to. done means there is nothing more to
// try: outcome says how it ended. Otherwise class names the failure that a
// later attempt may get past.
type result struct {
	done    bool
	outcome Outcome
	class   string
}

// try makes one attempt: the refresh token when there is one (revoking it
// ends the grant, RFC 7009 §2.1), else the access token; when the provider
// does not revoke refresh tokens (unsupported_token_type), the access
// token after all.
func (r *Revoker) try(ctx context.Context, providerID string, t Tokens) result {
	target, err := r.d.Resolve(ctx, providerID)
	return r.tryAt(ctx, target, err, t)
}

// tryAt is try with the target already resolved (or its error).
func (r *Revoker) tryAt(ctx context.Context, target Target, err error, t Tokens) result {
	switch {
	case errors.Is(err, ErrNoProvider):
		return result{done: true, outcome: NotRevoked, class: "no_provider"}
	case err != nil:
		return result{class: "provider_unresolved"}
	case target.URL == "":
		return result{done: true, outcome: NotRevoked, class: "no_endpoint"}
	}
	if t.RefreshToken != "" {
		err = r.d.Client.Revoke(ctx, target.URL, target.Endpoint, t.RefreshToken, "refresh_token")
		if errorCode(err) == "unsupported_token_type" && t.AccessToken != "" {
			err = r.d.Client.Revoke(ctx, target.URL, target.Endpoint, t.AccessToken, "access_token")
		}
	} else {
		err = r.d.Client.Revoke(ctx, target.URL, target.Endpoint, t.AccessToken, "access_token")
	}
	if err == nil {
		return result{done: true, outcome: Revoked}
	}
	switch class := exchange.Classify(err); class {
	case exchange.ClassTransient, exchange.ClassInvalidClient:
		// The provider is down, throttling, or refuses our client: an
		// operator may fix the last one (rotated secret).
		return result{class: string(class)}
	default:
		c := errorCode(err)
		if c == "" {
			c = string(class)
		}
		return result{done: true, outcome: Failed, class: c}
	}
}

// errorCode is the OAuth error code of a provider's answer ("" if none).
func errorCode(err error) string {
	var oe *exchange.Error
	if errors.As(err, &oe) {
		return oe.Code
	}
	return ""
}

// backoff is the wait after the n-th failed attempt (n >= 1).
func (r *Revoker) backoff(n int) time.Duration {
	d := r.opts.MinBackoff
	for i := 1; i < n && d < r.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, r.opts.MaxBackoff)
}

// attemptPending makes one attempt for a revocation this caller holds the
// claim of, then deletes it (finished) or plans the next attempt.
// Revocations that were retried (Attempts > 0) are audited when they end.
func (r *Revoker) attemptPending(ctx context.Context, rev storage.Revocation, t Tokens) Outcome {
	res := r.try(ctx, rev.ProviderID, t)
	now := r.d.Now().UTC()
	attempts := rev.Attempts + 1
	if !res.done && !now.Before(rev.GiveUpAt) {
		res = result{done: true, outcome: Failed, class: "retry_period_over:" + res.class}
	}
	if res.done {
		if err := r.d.Store.DeleteRevocation(ctx, rev.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			// The row comes back after its lease; revoking twice is
			// harmless (RFC 7009 §2.2).
			r.d.Logger.WarnContext(ctx, "finished revocation not deleted", "revocation_id", rev.ID, "err", err)
		}
		r.m.outcome(res.outcome)
		if rev.Attempts > 0 {
			r.auditEnd(ctx, rev, attempts, res)
		}
		return res.outcome
	}
	next := now.Add(r.backoff(attempts))
	if next.After(rev.GiveUpAt) {
		next = rev.GiveUpAt
	}
	_, err := r.d.Store.UpdateRevocation(ctx, rev.ID, func(cur storage.Revocation) (storage.Revocation, error) {
		cur.Attempts, cur.NextAttemptAt, cur.LastErrorClass, cur.UpdatedAt = attempts, next, res.class, now
		return cur, nil
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		r.d.Logger.WarnContext(ctx, "pending revocation not updated; retried when its lease ends", "revocation_id", rev.ID, "err", err)
	}
	r.m.outcome(Pending)
	r.d.Logger.InfoContext(ctx, "revocation at provider failed; will retry", "revocation_id", rev.ID,
		"connection_id", rev.ConnectionID, "attempts", attempts, "error_class", res.class, "next_attempt_at", next)
	return Pending
}

func (r *Revoker) auditEnd(ctx context.Context, rev storage.Revocation, attempts int, res result) {
	e := storage.AuditEvent{Time: r.d.Now().UTC(), Type: "revocation.succeeded", ConnectionID: rev.ConnectionID,
		ProviderID: rev.ProviderID, Detail: map[string]string{"attempts": strconv.Itoa(attempts)}}
	if res.outcome != Revoked {
		e.Type = "revocation.failed"
		e.Detail["reason"] = res.class
	}
	r.d.Audit(ctx, e)
}

// RunOnce claims the due revocations and attempts each; it returns how
// many it attempted.
func (r *Revoker) RunOnce(ctx context.Context) (int, error) {
	now := r.d.Now().UTC()
	due, err := r.d.Store.ClaimRevocations(ctx, now, now.Add(r.opts.Lease), r.opts.Batch)
	if err != nil {
		return 0, err
	}
	for _, rev := range due {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		t, err := r.open(rev)
		if err != nil {
			// No key opens it (a retired encryption key): nothing can
			// revoke it any more.
			r.d.Logger.WarnContext(ctx, "pending revocation does not open; dropped", "revocation_id", rev.ID, "err", err)
			if err := r.d.Store.DeleteRevocation(ctx, rev.ID); err == nil {
				r.m.outcome(Failed)
				r.auditEnd(ctx, rev, rev.Attempts, result{done: true, outcome: Failed, class: "unreadable"})
			}
			continue
		}
		r.attemptPending(ctx, rev, t)
	}
	return len(due), nil
}

// Run retries due revocations every Interval until ctx ends. Safe with
// many replicas.
func (r *Revoker) Run(ctx context.Context) {
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		if _, err := r.RunOnce(ctx); err != nil && ctx.Err() == nil {
			r.d.Logger.WarnContext(ctx, "revocation pass failed", "err", err)
		}
		if n, err := r.d.Store.CountRevocations(ctx); err == nil {
			r.m.pending.Set(float64(n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
