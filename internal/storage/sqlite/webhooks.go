package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

const endpointColumns = `id, owner, url, events, secret, previous_secret, previous_secret_until,
    enabled, disabled_reason, failing_since, created_at, updated_at`

func scanEndpoint(row scanner) (storage.WebhookEndpoint, error) {
	var (
		e                               storage.WebhookEndpoint
		events                          sql.NullString
		prev                            []byte
		prevUntil, failing, created, up sql.NullInt64
	)
	err := row.Scan(&e.ID, &e.Owner, &e.URL, &events, &e.Secret, &prev, &prevUntil,
		&e.Enabled, &e.DisabledReason, &failing, &created, &up)
	if err != nil {
		return storage.WebhookEndpoint{}, err
	}
	if e.Events, err = decodeList(events); err != nil {
		return storage.WebhookEndpoint{}, fmt.Errorf("decode events: %w", err)
	}
	e.PreviousSecret = nilIfEmpty(prev)
	e.PreviousSecretUntil, e.FailingSince = fromNanos(prevUntil), fromNanos(failing)
	e.CreatedAt, e.UpdatedAt = fromNanos(created), fromNanos(up)
	return e, nil
}

func endpointArgs(e storage.WebhookEndpoint) ([]any, error) {
	if err := checkTimes(e.PreviousSecretUntil, e.FailingSince, e.CreatedAt, e.UpdatedAt); err != nil {
		return nil, err
	}
	events, err := encodeList(e.Events)
	if err != nil {
		return nil, err
	}
	return []any{e.ID, e.Owner, e.URL, events, e.Secret, blob(e.PreviousSecret), nanos(e.PreviousSecretUntil),
		e.Enabled, e.DisabledReason, nanos(e.FailingSince), nanos(e.CreatedAt), nanos(e.UpdatedAt)}, nil
}

// CreateWebhookEndpoint stores e.
func (s *Store) CreateWebhookEndpoint(ctx context.Context, e storage.WebhookEndpoint) error {
	op := fmt.Sprintf("create webhook endpoint %q", e.ID)
	args, err := endpointArgs(e)
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	_, err = s.write.ExecContext(ctx, `INSERT INTO webhook_endpoints (`+endpointColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	return wrap(op, err)
}

// GetWebhookEndpoint returns the endpoint with that id.
func (s *Store) GetWebhookEndpoint(ctx context.Context, id string) (storage.WebhookEndpoint, error) {
	e, err := scanEndpoint(s.read.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE id = ?`, id))
	return e, wrap(fmt.Sprintf("get webhook endpoint %q", id), err)
}

func queryEndpoints(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, where string, args ...any) ([]storage.WebhookEndpoint, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.WebhookEndpoint
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// ListWebhookEndpoints returns the endpoints matching f, oldest first.
func (s *Store) ListWebhookEndpoints(ctx context.Context, f storage.WebhookEndpointFilter) ([]storage.WebhookEndpoint, error) {
	es, err := queryEndpoints(ctx, s.read, `? OR owner = ?`, f.AnyOwner, f.Owner)
	return es, wrap("list webhook endpoints", err)
}

// UpdateWebhookEndpoint runs on the single writer; enabling a disabled
// endpoint replays its pending backlog.
func (s *Store) UpdateWebhookEndpoint(ctx context.Context, id string, fn func(storage.WebhookEndpoint) (storage.WebhookEndpoint, error)) (storage.WebhookEndpoint, error) {
	op := fmt.Sprintf("update webhook endpoint %q", id)
	var out storage.WebhookEndpoint
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := scanEndpoint(tx.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE id = ?`, id))
		if err != nil {
			return wrap(op, err)
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		next.ID, next.Owner, next.CreatedAt = cur.ID, cur.Owner, cur.CreatedAt
		args, err := endpointArgs(next)
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE webhook_endpoints SET (`+endpointColumns+`) =
(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) WHERE id = ?`, append(args, id)...)
		if err != nil {
			return wrap(op, err)
		}
		if next.Enabled && !cur.Enabled {
			_, err = tx.ExecContext(ctx, `UPDATE webhook_deliveries SET next_attempt_at = ?, attempts = 0, lease_until = NULL, lease_owner = ''
WHERE endpoint_id = ? AND state = 'pending'`, nanos(next.UpdatedAt), id)
			if err != nil {
				return wrap(op, err)
			}
		}
		out, err = scanEndpoint(tx.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE id = ?`, id))
		return wrap(op, err)
	})
	return out, err
}

// DeleteWebhookEndpoint removes the endpoint; deliveries go by cascade.
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, id string) error {
	return deleteByID(ctx, s.write, "webhook_endpoints", id, fmt.Sprintf("delete webhook endpoint %q", id))
}

const eventColumns = `id, connection_id, seq, type, workspace_id, client_name, user_id, provider_name,
    status, reason, scopes, occurred_at, connection_created_at, connection_updated_at`

func scanEvent(row scanner) (storage.LifecycleEvent, error) {
	var (
		ev                        storage.LifecycleEvent
		typ, status               string
		scopes                    sql.NullString
		occurred, created, update sql.NullInt64
	)
	err := row.Scan(&ev.ID, &ev.ConnectionID, &ev.Seq, &typ, &ev.WorkspaceID, &ev.ClientName, &ev.UserID, &ev.ProviderName,
		&status, &ev.Reason, &scopes, &occurred, &created, &update)
	if err != nil {
		return storage.LifecycleEvent{}, err
	}
	if ev.Scopes, err = decodeList(scopes); err != nil {
		return storage.LifecycleEvent{}, fmt.Errorf("decode scopes: %w", err)
	}
	ev.Type, ev.Status = storage.LifecycleType(typ), storage.ConnectionStatus(status)
	ev.OccurredAt, ev.ConnectionCreatedAt, ev.ConnectionUpdatedAt = fromNanos(occurred), fromNanos(created), fromNanos(update)
	return ev, nil
}

// recordLifecycle appends the events of prev -> next (see
// storage.ClassifyLifecycle) and their deliveries inside tx, on the single
// writer: sequence numbers are assigned one writer at a time.
func recordLifecycle(ctx context.Context, tx *sql.Tx, prev, next *storage.Connection) error {
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
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM webhook_events WHERE connection_id = ?`, c.ID).Scan(&seq); err != nil {
		return fmt.Errorf("read event sequence: %w", err)
	}
	endpoints, err := queryEndpoints(ctx, tx, `owner = '' OR owner = ?`, c.ClientName)
	if err != nil {
		return fmt.Errorf("read webhook endpoints: %w", err)
	}
	for _, typ := range types {
		seq++
		ev := storage.NewLifecycleEvent(typ, *c, at)
		ev.Seq = seq
		scopes, err := encodeList(ev.Scopes)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO webhook_events (`+eventColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ev.ID, ev.ConnectionID, ev.Seq, string(ev.Type), ev.WorkspaceID, ev.ClientName, ev.UserID, ev.ProviderName,
			string(ev.Status), ev.Reason, scopes, nanos(ev.OccurredAt), nanos(ev.ConnectionCreatedAt), nanos(ev.ConnectionUpdatedAt))
		if err != nil {
			return fmt.Errorf("append lifecycle event: %w", err)
		}
		for _, e := range endpoints {
			if !e.Matches(c.ClientName, typ) {
				continue
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, connection_id, seq, state, next_attempt_at, created_at)
VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)`, storage.NewWebhookID("dlv_"), e.ID, ev.ID, c.ID, seq, nanos(at), nanos(at))
			if err != nil {
				return fmt.Errorf("queue webhook delivery: %w", err)
			}
		}
	}
	return nil
}

// ListLifecycleEvents returns the connection's events in order.
func (s *Store) ListLifecycleEvents(ctx context.Context, connectionID string) ([]storage.LifecycleEvent, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+eventColumns+` FROM webhook_events WHERE connection_id = ? ORDER BY seq`, connectionID)
	if err != nil {
		return nil, wrap("list lifecycle events", err)
	}
	defer rows.Close()
	var out []storage.LifecycleEvent
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return nil, wrap("list lifecycle events", err)
		}
		out = append(out, ev)
	}
	return out, wrap("list lifecycle events", rows.Err())
}

const deliveryColumns = `d.id, d.endpoint_id, d.event_id, ev.type, d.connection_id, d.seq, d.state, d.attempts,
    d.next_attempt_at, d.last_attempt_at, d.last_status_code, d.last_latency_ms, d.last_error, d.delivered_at, d.created_at`

func scanDelivery(row scanner) (storage.WebhookDelivery, error) {
	var (
		d                              storage.WebhookDelivery
		typ, state                     string
		latency                        int64
		next, last, delivered, created sql.NullInt64
	)
	err := row.Scan(&d.ID, &d.EndpointID, &d.EventID, &typ, &d.ConnectionID, &d.Seq, &state, &d.Attempts,
		&next, &last, &d.LastStatusCode, &latency, &d.LastError, &delivered, &created)
	if err != nil {
		return storage.WebhookDelivery{}, err
	}
	d.EventType, d.State, d.LastLatency = storage.LifecycleType(typ), storage.WebhookDeliveryState(state), time.Duration(latency)*time.Millisecond
	d.NextAttemptAt, d.LastAttemptAt = fromNanos(next), fromNanos(last)
	d.DeliveredAt, d.CreatedAt = fromNanos(delivered), fromNanos(created)
	return d, nil
}

func queryDeliveries(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, tail string, args ...any) ([]storage.WebhookDelivery, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+deliveryColumns+`
FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id `+tail, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.WebhookDelivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ClaimWebhookDeliveries leases due deliveries on the single writer, so
// claimers (one process normally; several share the file's write lock)
// take disjoint rows.
func (s *Store) ClaimWebhookDeliveries(ctx context.Context, owner string, now, leaseUntil time.Time, n int) ([]storage.ClaimedDelivery, error) {
	const op = "claim webhook deliveries"
	var out []storage.ClaimedDelivery
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ds, err := queryDeliveries(ctx, tx, `JOIN webhook_endpoints e ON e.id = d.endpoint_id
WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until <= ?) AND e.enabled
  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = d.endpoint_id
    AND p.connection_id = d.connection_id AND p.seq < d.seq AND p.state = 'pending')
ORDER BY d.next_attempt_at, d.seq LIMIT ?`, now.UnixNano(), now.UnixNano(), limit(n))
		if err != nil {
			return wrap(op, err)
		}
		events, endpoints := map[string]storage.LifecycleEvent{}, map[string]storage.WebhookEndpoint{}
		for _, d := range ds {
			if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET lease_until = ?, lease_owner = ? WHERE id = ?`,
				leaseUntil.UnixNano(), owner, d.ID); err != nil {
				return wrap(op, err)
			}
			ev, ok := events[d.EventID]
			if !ok {
				if ev, err = scanEvent(tx.QueryRowContext(ctx, `SELECT `+eventColumns+` FROM webhook_events WHERE id = ?`, d.EventID)); err != nil {
					return wrap(op, err)
				}
				events[d.EventID] = ev
			}
			e, ok := endpoints[d.EndpointID]
			if !ok {
				if e, err = scanEndpoint(tx.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE id = ?`, d.EndpointID)); err != nil {
					return wrap(op, err)
				}
				endpoints[d.EndpointID] = e
			}
			out = append(out, storage.ClaimedDelivery{Delivery: d, Event: ev, Endpoint: e})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FinishWebhookAttempt records the attempt on the single writer.
func (s *Store) FinishWebhookAttempt(ctx context.Context, id string, a storage.WebhookAttempt) (bool, error) {
	op := fmt.Sprintf("finish webhook delivery %q", id)
	disabled := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var endpointID, state, leaseOwner string
		if err := tx.QueryRowContext(ctx, `SELECT endpoint_id, state, lease_owner FROM webhook_deliveries WHERE id = ?`, id).
			Scan(&endpointID, &state, &leaseOwner); err != nil {
			return wrap(op, err)
		}
		if state != string(storage.DeliveryPending) || leaseOwner != a.Owner {
			return fmt.Errorf("sqlite: %s: lease lost: %w", op, storage.ErrNotFound)
		}
		ep, err := scanEndpoint(tx.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE id = ?`, endpointID))
		if err != nil {
			return wrap(op, err)
		}
		next, delivered := nanos(a.NextAttemptAt), any(nil)
		newState := storage.DeliveryPending
		switch {
		case a.Delivered:
			newState, next, delivered = storage.DeliveryDelivered, nil, nanos(a.At)
		case a.GiveUp:
			newState, next = storage.DeliveryFailed, nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = ?,
    lease_until = NULL, lease_owner = '', last_attempt_at = ?, last_status_code = ?, last_latency_ms = ?,
    last_error = ?, delivered_at = ? WHERE id = ?`,
			string(newState), next, nanos(a.At), a.StatusCode, a.Latency.Milliseconds(), a.Error, delivered, id)
		if err != nil {
			return wrap(op, err)
		}
		switch {
		case a.Delivered:
			_, err = tx.ExecContext(ctx, `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ?`, endpointID)
		default:
			since := ep.FailingSince
			if since.IsZero() {
				since = a.At
			}
			disabled = ep.Enabled && !a.DisableIfFailingSince.IsZero() && since.Before(a.DisableIfFailingSince)
			if disabled {
				_, err = tx.ExecContext(ctx, `UPDATE webhook_endpoints SET failing_since = ?, enabled = 0, disabled_reason = 'failing', updated_at = ?
WHERE id = ?`, nanos(since), nanos(a.At), endpointID)
			} else {
				_, err = tx.ExecContext(ctx, `UPDATE webhook_endpoints SET failing_since = ? WHERE id = ?`, nanos(since), endpointID)
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
	ds, err := queryDeliveries(ctx, s.read, `WHERE d.endpoint_id = ? ORDER BY d.created_at DESC, d.seq DESC, d.id DESC LIMIT ?`, endpointID, limit(n))
	return ds, wrap("list webhook deliveries", err)
}

// RetryWebhookDelivery makes the delivery pending and due at now.
func (s *Store) RetryWebhookDelivery(ctx context.Context, endpointID, id string, now time.Time) (storage.WebhookDelivery, error) {
	op := fmt.Sprintf("retry webhook delivery %q", id)
	var out storage.WebhookDelivery
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?,
    lease_until = NULL, lease_owner = '', delivered_at = NULL WHERE id = ? AND endpoint_id = ?`, nanos(now), id, endpointID)
		if err != nil {
			return wrap(op, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return wrap(op, err)
		} else if n == 0 {
			return fmt.Errorf("sqlite: %s: %w", op, storage.ErrNotFound)
		}
		ds, err := queryDeliveries(ctx, tx, `WHERE d.id = ?`, id)
		if err != nil || len(ds) != 1 {
			return wrap(op, err)
		}
		out = ds[0]
		return nil
	})
	return out, err
}

// WebhookQueueStats counts pending deliveries of enabled endpoints.
func (s *Store) WebhookQueueStats(ctx context.Context) (int64, time.Time, error) {
	var (
		n      int64
		oldest sql.NullInt64
	)
	err := s.read.QueryRowContext(ctx, `SELECT count(*), min(d.created_at) FROM webhook_deliveries d
JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.state = 'pending' AND e.enabled`).Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, wrap("webhook queue stats", err)
	}
	return n, fromNanos(oldest), nil
}
