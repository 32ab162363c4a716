package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dromos-dev/dromos/internal/storage"
)

var errNoAuditTime = errors.New("audit event has no time")

// AppendAudit stores the events with new ids (e.ID is ignored), in one
// transaction, as one COPY: a busy proxy sends hundreds of events a
// second, and COPY costs the broker (and the server) a fraction of one
// INSERT per row. Like the INSERTs it replaced, a row PostgreSQL refuses
// fails the whole call (package auditq then writes event by event).
func (s *Store) AppendAudit(ctx context.Context, events ...storage.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	rows := make([][]any, len(events))
	for i, e := range events {
		if e.Time.IsZero() {
			return fmt.Errorf("postgres: append audit %q: %w", e.Type, errNoAuditTime)
		}
		detail, err := encodeMap(e.Detail)
		if err != nil {
			return fmt.Errorf("postgres: append audit %q: encode detail: %w", e.Type, err)
		}
		var d any // NULL when there is no detail
		if detail != nil {
			d = detail
		}
		rows[i] = []any{e.Time, e.Type, e.ConnectionID, e.ProviderID, e.Actor, e.ClientIP, e.UserAgent, d}
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_events"}, auditColumns, pgx.CopyFromRows(rows))
		return wrap(fmt.Sprintf("append %d audit events", len(events)), err)
	})
}

var auditColumns = []string{"occurred_at", "type", "connection_id", "provider_id", "actor", "client_ip", "user_agent", "detail"}

// ListAudit returns the events matching f, newest first.
func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	var (
		where []string
		args  []any
	)
	if f.ConnectionID != "" {
		args = append(args, f.ConnectionID)
		where = append(where, "connection_id = $"+strconv.Itoa(len(args)))
	}
	if !f.Since.IsZero() {
		args = append(args, f.Since)
		where = append(where, "occurred_at >= $"+strconv.Itoa(len(args)))
	}
	q := `SELECT id, occurred_at, type, connection_id, provider_id, actor, client_ip, user_agent, detail FROM audit_events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limit(f.Limit))
	q += ` ORDER BY occurred_at DESC, id DESC LIMIT $` + strconv.Itoa(len(args))
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, wrap("list audit", err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.AuditEvent, error) {
		var (
			e      storage.AuditEvent
			at     pgtype.Timestamptz
			detail []byte
		)
		if err := row.Scan(&e.ID, &at, &e.Type, &e.ConnectionID, &e.ProviderID, &e.Actor, &e.ClientIP, &e.UserAgent, &detail); err != nil {
			return storage.AuditEvent{}, err
		}
		e.Time = fromNullTime(at)
		var err error
		if e.Detail, err = decodeMap(detail); err != nil {
			return storage.AuditEvent{}, fmt.Errorf("decode detail: %w", err)
		}
		return e, nil
	})
	if err != nil {
		return nil, wrap("list audit", err)
	}
	return events, nil
}

// PruneAudit deletes events that occurred before before, pruneBatch rows
// per statement, so the first pass over a large table is many short
// transactions rather than one long one.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM audit_events WHERE id IN
(SELECT id FROM audit_events WHERE occurred_at < $1 ORDER BY occurred_at LIMIT $2)`, before, pruneBatch)
		if err != nil {
			return total, wrap("prune audit", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < pruneBatch {
			return total, nil
		}
	}
}

// pruneBatch is how many audit events one pruning statement deletes.
const pruneBatch = 5000
