package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

var errNoAuditTime = errors.New("audit event has no time")

// AppendAudit stores the events with new ids (e.ID is ignored) in one
// transaction.
func (s *Store) AppendAudit(ctx context.Context, events ...storage.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	type row struct {
		at     any
		detail any
	}
	rows := make([]row, len(events))
	for i, e := range events {
		op := fmt.Sprintf("append audit %q", e.Type)
		if e.Time.IsZero() {
			return fmt.Errorf("sqlite: %s: %w", op, errNoAuditTime)
		}
		if err := checkTimes(e.Time); err != nil {
			return fmt.Errorf("sqlite: %s: %w", op, err)
		}
		detail, err := encodeMap(e.Detail)
		if err != nil {
			return fmt.Errorf("sqlite: %s: encode detail: %w", op, err)
		}
		rows[i] = row{nanos(e.Time), detail}
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return wrap("append audit: begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	for i, e := range events {
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_events
    (occurred_at, type, connection_id, provider_id, actor, client_ip, user_agent, detail)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			rows[i].at, e.Type, e.ConnectionID, e.ProviderID, e.Actor, e.ClientIP, e.UserAgent, rows[i].detail); err != nil {
			return wrap(fmt.Sprintf("append audit %q", e.Type), err)
		}
	}
	return wrap("append audit: commit", tx.Commit())
}

// ListAudit returns the events matching f, newest first.
func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	var (
		where []string
		args  []any
	)
	if f.ConnectionID != "" {
		where = append(where, "connection_id = ?")
		args = append(args, f.ConnectionID)
	}
	if !f.Since.IsZero() {
		since := f.Since
		if since.Before(minTime) {
			since = minTime
		}
		if since.After(maxTime) {
			return nil, nil
		}
		where = append(where, "occurred_at >= ?")
		args = append(args, since.UnixNano())
	}
	q := `SELECT id, occurred_at, type, connection_id, provider_id, actor, client_ip, user_agent, detail FROM audit_events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY occurred_at DESC, id DESC LIMIT ?`
	args = append(args, limit(f.Limit))
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, wrap("list audit", err)
	}
	defer rows.Close()
	var events []storage.AuditEvent
	for rows.Next() {
		var (
			e      storage.AuditEvent
			at     sql.NullInt64
			detail sql.NullString
		)
		if err := rows.Scan(&e.ID, &at, &e.Type, &e.ConnectionID, &e.ProviderID, &e.Actor, &e.ClientIP, &e.UserAgent, &detail); err != nil {
			return nil, wrap("list audit", err)
		}
		e.Time = fromNanos(at)
		if e.Detail, err = decodeMap(detail); err != nil {
			return nil, fmt.Errorf("sqlite: list audit: decode detail: %w", err)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list audit", err)
	}
	return events, nil
}

// PruneAudit deletes events that occurred before before, pruneBatch rows
// per statement: the writer connection is shared with callbacks and
// refreshes, which must not wait for one long delete.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		res, err := s.write.ExecContext(ctx, `DELETE FROM audit_events WHERE id IN
(SELECT id FROM audit_events WHERE occurred_at < ? ORDER BY occurred_at LIMIT ?)`, nanos(before), pruneBatch)
		if err != nil {
			return total, wrap("prune audit", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, wrap("prune audit", err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}

// pruneBatch is how many audit events one pruning statement deletes.
const pruneBatch = 5000
