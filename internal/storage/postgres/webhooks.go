package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dromos-dev/dromos/internal/storage"
)

const endpointColumns = `id, owner, url, events, secret, previous_secret, previous_secret_until,
    enabled, disabled_reason, failing_since, created_at, updated_at`

func scanEndpoint(row pgx.Row) (storage.WebhookEndpoint, error) {
	var (
		e                               storage.WebhookEndpoint
		prev                            []byte
		prevUntil, failing, created, up pgtype.Timestamptz
	)
	err := row.Scan(&e.ID, &e.Owner, &e.URL, &e.Events, &e.Secret, &prev, &prevUntil,
		&e.Enabled, &e.DisabledReason, &failing, &created, &up)
	if err != nil {
		return storage.WebhookEndpoint{}, err
	}
	e.Events = nilIfNone(e.Events)
	e.PreviousSecret = nilIfEmpty(prev)
	e.PreviousSecretUntil, e.FailingSince = fromNullTime(prevUntil), fromNullTime(failing)
	e.CreatedAt, e.UpdatedAt = fromNullTime(created), fromNullTime(up)
	return e, nil
}

// CreateWebhookEndpoint stores e.
func (s *Store) CreateWebhookEndpoint(ctx context.Context, e storage.WebhookEndpoint) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO webhook_endpoints (`+endpointColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		e.ID, e.Owner, e.URL, nonNil(e.Events), e.Secret, nilIfEmpty(e.PreviousSecret), nullTime(e.PreviousSecretUntil),
		e.Enabled, e.DisabledReason, nullTime(e.FailingSince), e.CreatedAt, e.UpdatedAt)
	return wrap(fmt.Sprintf("create webhook endpoint %q", e.ID), err)
}

// GetWebhookEndpoint returns the endpoint with that id.
func (s *Store) GetWebhookEndpoint(ctx context.Context, id string) (storage.WebhookEndpoint, error) {
	e, err := scanEndpoint(s.pool.QueryRow(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE id = $1`, id))
	return e, wrap(fmt.Sprintf("get webhook endpoint %q", id), err)
}

// ListWebhookEndpoints returns the endpoints matching f, oldest first.
func (s *Store) ListWebhookEndpoints(ctx context.Context, f storage.WebhookEndpointFilter) ([]storage.WebhookEndpoint, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints
WHERE $1 OR owner = $2 ORDER BY created_at, id`, f.AnyOwner, f.Owner)
	if err != nil {
		return nil, wrap("list webhook endpoints", err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.WebhookEndpoint, error) { return scanEndpoint(r) })
	return es, wrap("list webhook endpoints", err)
}

// UpdateWebhookEndpoint locks the endpoint row (FOR NO KEY UPDATE, which
// deliveries being inserted for it do not wait on) and replays the pending
// backlog when the update enables it.
func (s *Store) UpdateWebhookEndpoint(ctx context.Context, id string, fn func(storage.WebhookEndpoint) (storage.WebhookEndpoint, error)) (storage.WebhookEndpoint, error) {
	op := fmt.Sprintf("update webhook endpoint %q", id)
	var out storage.WebhookEndpoint
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := scanEndpoint(tx.QueryRow(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE id = $1 FOR NO KEY UPDATE`, id))
		if err != nil {
			return wrap(op, err)
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		next.ID, next.Owner, next.CreatedAt = cur.ID, cur.Owner, cur.CreatedAt
		_, err = tx.Exec(ctx, `UPDATE webhook_endpoints SET url = $2, events = $3, secret = $4, previous_secret = $5,
    previous_secret_until = $6, enabled = $7, disabled_reason = $8, failing_since = $9, updated_at = $10 WHERE id = $1`,
			id, next.URL, nonNil(next.Events), next.Secret, nilIfEmpty(next.PreviousSecret), nullTime(next.PreviousSecretUntil),
			next.Enabled, next.DisabledReason, nullTime(next.FailingSince), next.UpdatedAt)
		if err != nil {
			return wrap(op, err)
		}
		if next.Enabled && !cur.Enabled {
			_, err = tx.Exec(ctx, `UPDATE webhook_deliveries SET next_attempt_at = $2, attempts = 0, lease_until = NULL, lease_owner = ''
WHERE endpoint_id = $1 AND state = 'pending'`, id, next.UpdatedAt)
			if err != nil {
				return wrap(op, err)
			}
		}
		out, err = scanEndpoint(tx.QueryRow(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE id = $1`, id))
		return wrap(op, err)
	})
	return out, err
}

// DeleteWebhookEndpoint removes the endpoint; deliveries go by cascade.
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhook_endpoints WHERE id = $1`, id)
	if err != nil {
		return wrap(fmt.Sprintf("delete webhook endpoint %q", id), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: delete webhook endpoint %q: %w", id, storage.ErrNotFound)
	}
	return nil
}

const eventColumns = `id, connection_id, seq, type, workspace_id, client_name, user_id, provider_name,
    status, reason, scopes, occurred_at, connection_created_at, connection_updated_at`

func scanEvent(row pgx.Row) (storage.LifecycleEvent, error) {
	var (
		ev                        storage.LifecycleEvent
		typ, status               string
		occurred, created, update pgtype.Timestamptz
	)
	err := row.Scan(&ev.ID, &ev.ConnectionID, &ev.Seq, &typ, &ev.WorkspaceID, &ev.ClientName, &ev.UserID, &ev.ProviderName,
		&status, &ev.Reason, &ev.Scopes, &occurred, &created, &update)
	if err != nil {
		return storage.LifecycleEvent{}, err
	}
	ev.Type, ev.Status, ev.Scopes = storage.LifecycleType(typ), storage.ConnectionStatus(status), nilIfNone(ev.Scopes)
	ev.OccurredAt, ev.ConnectionCreatedAt, ev.ConnectionUpdatedAt = fromNullTime(occurred), fromNullTime(created), fromNullTime(update)
	return ev, nil
}

// recordLifecycle appends the events of prev -> next (see
// storage.ClassifyLifecycle) and their deliveries inside tx, which holds
// the connection's row lock: sequence numbers are assigned one writer at a
// time.
func recordLifecycle(ctx context.Context, tx pgx.Tx, prev, next *storage.Connection) error {
	types := storage.ClassifyLifecycle(prev, next)
	if len(types) == 0 {
		return nil
	}
	c := next
	if next == nil {
		c = prev
	}
	at := storage.EventTime(*c)
	var seq int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM webhook_events WHERE connection_id = $1`, c.ID).Scan(&seq); err != nil {
		return fmt.Errorf("read event sequence: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE owner = '' OR owner = $1`, c.ClientName)
	if err != nil {
		return fmt.Errorf("read webhook endpoints: %w", err)
	}
	endpoints, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.WebhookEndpoint, error) { return scanEndpoint(r) })
	if err != nil {
		return fmt.Errorf("read webhook endpoints: %w", err)
	}
	for _, typ := range types {
		seq++
		ev := storage.NewLifecycleEvent(typ, *c, at)
		ev.Seq = seq
		_, err := tx.Exec(ctx, `INSERT INTO webhook_events (`+eventColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			ev.ID, ev.ConnectionID, ev.Seq, string(ev.Type), ev.WorkspaceID, ev.ClientName, ev.UserID, ev.ProviderName,
			string(ev.Status), ev.Reason, nonNil(ev.Scopes), ev.OccurredAt, nullTime(ev.ConnectionCreatedAt), nullTime(ev.ConnectionUpdatedAt))
		if err != nil {
			return fmt.Errorf("append lifecycle event: %w", err)
		}
		for _, e := range endpoints {
			if !e.Matches(c.ClientName, typ) {
				continue
			}
			_, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, connection_id, seq, state, next_attempt_at, created_at)
VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6)`, storage.NewWebhookID("dlv_"), e.ID, ev.ID, c.ID, seq, at)
			if err != nil {
				return fmt.Errorf("queue webhook delivery: %w", err)
			}
		}
	}
	return nil
}

// ListLifecycleEvents returns the connection's events in order.
func (s *Store) ListLifecycleEvents(ctx context.Context, connectionID string) ([]storage.LifecycleEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM webhook_events WHERE connection_id = $1 ORDER BY seq`, connectionID)
	if err != nil {
		return nil, wrap("list lifecycle events", err)
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.LifecycleEvent, error) { return scanEvent(r) })
	return evs, wrap("list lifecycle events", err)
}

const deliveryColumns = `d.id, d.endpoint_id, d.event_id, ev.type, d.connection_id, d.seq, d.state, d.attempts,
    d.next_attempt_at, d.last_attempt_at, d.last_status_code, d.last_latency_ms, d.last_error, d.delivered_at, d.created_at`

func scanDelivery(row pgx.Row, extra ...any) (storage.WebhookDelivery, error) {
	var (
		d                              storage.WebhookDelivery
		typ, state                     string
		latency                        int64
		next, last, delivered, created pgtype.Timestamptz
	)
	err := row.Scan(append([]any{&d.ID, &d.EndpointID, &d.EventID, &typ, &d.ConnectionID, &d.Seq, &state, &d.Attempts,
		&next, &last, &d.LastStatusCode, &latency, &d.LastError, &delivered, &created}, extra...)...)
	if err != nil {
		return storage.WebhookDelivery{}, err
	}
	d.EventType, d.State, d.LastLatency = storage.LifecycleType(typ), storage.WebhookDeliveryState(state), time.Duration(latency)*time.Millisecond
	d.NextAttemptAt, d.LastAttemptAt = fromNullTime(next), fromNullTime(last)
	d.DeliveredAt, d.CreatedAt = fromNullTime(delivered), fromNullTime(created)
	return d, nil
}

// ClaimWebhookDeliveries leases due deliveries with FOR UPDATE SKIP
// LOCKED, so replicas claiming at once take disjoint rows without waiting.
func (s *Store) ClaimWebhookDeliveries(ctx context.Context, owner string, now, leaseUntil time.Time, n int) ([]storage.ClaimedDelivery, error) {
	const op = "claim webhook deliveries"
	rows, err := s.pool.Query(ctx, `WITH due AS (
  SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
  WHERE d.state = 'pending' AND d.next_attempt_at <= $1 AND (d.lease_until IS NULL OR d.lease_until <= $1) AND e.enabled
    AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = d.endpoint_id
      AND p.connection_id = d.connection_id AND p.seq < d.seq AND p.state = 'pending')
  ORDER BY d.next_attempt_at, d.seq LIMIT $4 FOR UPDATE OF d SKIP LOCKED)
UPDATE webhook_deliveries w SET lease_until = $2, lease_owner = $3 FROM due WHERE w.id = due.id RETURNING w.id`,
		now, leaseUntil, owner, limit(n))
	if err != nil {
		return nil, wrap(op, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(ids) == 0 {
		return nil, wrap(op, err)
	}
	rows, err = s.pool.Query(ctx, `SELECT `+deliveryColumns+`
FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id WHERE d.id = ANY($1) ORDER BY d.seq`, ids)
	if err != nil {
		return nil, wrap(op, err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.WebhookDelivery, error) { return scanDelivery(r) })
	if err != nil {
		return nil, wrap(op, err)
	}
	events, endpoints := map[string]storage.LifecycleEvent{}, map[string]storage.WebhookEndpoint{}
	out := make([]storage.ClaimedDelivery, 0, len(ds))
	for _, d := range ds {
		ev, ok := events[d.EventID]
		if !ok {
			if ev, err = scanEvent(s.pool.QueryRow(ctx, `SELECT `+eventColumns+` FROM webhook_events WHERE id = $1`, d.EventID)); err != nil {
				return nil, wrap(op, err)
			}
			events[d.EventID] = ev
		}
		e, ok := endpoints[d.EndpointID]
		if !ok {
			if e, err = s.GetWebhookEndpoint(ctx, d.EndpointID); err != nil {
				return nil, err
			}
			endpoints[d.EndpointID] = e
		}
		out = append(out, storage.ClaimedDelivery{Delivery: d, Event: ev, Endpoint: e})
	}
	return out, nil
}

// FinishWebhookAttempt locks the endpoint (FOR NO KEY UPDATE) before the
// delivery, the order UpdateWebhookEndpoint takes them in.
func (s *Store) FinishWebhookAttempt(ctx context.Context, id string, a storage.WebhookAttempt) (bool, error) {
	op := fmt.Sprintf("finish webhook delivery %q", id)
	disabled := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var endpointID string
		if err := tx.QueryRow(ctx, `SELECT endpoint_id FROM webhook_deliveries WHERE id = $1`, id).Scan(&endpointID); err != nil {
			return wrap(op, err)
		}
		ep, err := scanEndpoint(tx.QueryRow(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE id = $1 FOR NO KEY UPDATE`, endpointID))
		if err != nil {
			return wrap(op, err)
		}
		var state, leaseOwner string
		if err := tx.QueryRow(ctx, `SELECT state, lease_owner FROM webhook_deliveries WHERE id = $1 FOR UPDATE`, id).Scan(&state, &leaseOwner); err != nil {
			return wrap(op, err)
		}
		if state != string(storage.DeliveryPending) || leaseOwner != a.Owner {
			return fmt.Errorf("postgres: %s: lease lost: %w", op, storage.ErrNotFound)
		}
		next, delivered := nullTime(a.NextAttemptAt), pgtype.Timestamptz{}
		newState := storage.DeliveryPending
		switch {
		case a.Delivered:
			newState, next, delivered = storage.DeliveryDelivered, pgtype.Timestamptz{}, nullTime(a.At)
		case a.GiveUp:
			newState, next = storage.DeliveryFailed, pgtype.Timestamptz{}
		}
		_, err = tx.Exec(ctx, `UPDATE webhook_deliveries SET state = $2, attempts = attempts + 1, next_attempt_at = $3,
    lease_until = NULL, lease_owner = '', last_attempt_at = $4, last_status_code = $5, last_latency_ms = $6,
    last_error = $7, delivered_at = $8 WHERE id = $1`,
			id, string(newState), next, a.At, a.StatusCode, a.Latency.Milliseconds(), a.Error, delivered)
		if err != nil {
			return wrap(op, err)
		}
		switch {
		case a.Delivered:
			if !ep.FailingSince.IsZero() {
				_, err = tx.Exec(ctx, `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1`, endpointID)
			}
		default:
			since := ep.FailingSince
			if since.IsZero() {
				since = a.At
			}
			disabled = ep.Enabled && !a.DisableIfFailingSince.IsZero() && since.Before(a.DisableIfFailingSince)
			if disabled {
				_, err = tx.Exec(ctx, `UPDATE webhook_endpoints SET failing_since = $2, enabled = false, disabled_reason = 'failing', updated_at = $3
WHERE id = $1`, endpointID, since, a.At)
			} else {
				_, err = tx.Exec(ctx, `UPDATE webhook_endpoints SET failing_since = $2 WHERE id = $1`, endpointID, since)
			}
		}
		return wrap(op, err)
	})
	if err != nil {
		return false, err
	}
	return disabled, nil
}

// ListWebhookDeliveries returns the endpoint's deliveries, newest first.
func (s *Store) ListWebhookDeliveries(ctx context.Context, endpointID string, n int) ([]storage.WebhookDelivery, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryColumns+`
FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id
WHERE d.endpoint_id = $1 ORDER BY d.created_at DESC, d.seq DESC, d.id DESC LIMIT $2`, endpointID, limit(n))
	if err != nil {
		return nil, wrap("list webhook deliveries", err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.WebhookDelivery, error) { return scanDelivery(r) })
	return ds, wrap("list webhook deliveries", err)
}

// RetryWebhookDelivery makes the delivery pending and due at now.
func (s *Store) RetryWebhookDelivery(ctx context.Context, endpointID, id string, now time.Time) (storage.WebhookDelivery, error) {
	op := fmt.Sprintf("retry webhook delivery %q", id)
	tag, err := s.pool.Exec(ctx, `UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = $3,
    lease_until = NULL, lease_owner = '', delivered_at = NULL WHERE id = $1 AND endpoint_id = $2`, id, endpointID, now)
	if err != nil {
		return storage.WebhookDelivery{}, wrap(op, err)
	}
	if tag.RowsAffected() == 0 {
		return storage.WebhookDelivery{}, fmt.Errorf("postgres: %s: %w", op, storage.ErrNotFound)
	}
	d, err := scanDelivery(s.pool.QueryRow(ctx, `SELECT `+deliveryColumns+`
FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id WHERE d.id = $1`, id))
	return d, wrap(op, err)
}

// WebhookQueueStats counts pending deliveries of enabled endpoints.
func (s *Store) WebhookQueueStats(ctx context.Context) (int64, time.Time, error) {
	var (
		n      int64
		oldest pgtype.Timestamptz
	)
	err := s.pool.QueryRow(ctx, `SELECT count(*), min(d.created_at) FROM webhook_deliveries d
JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.state = 'pending' AND e.enabled`).Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, wrap("webhook queue stats", err)
	}
	return n, fromNullTime(oldest), nil
}
