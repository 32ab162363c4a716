package storagetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

func newEvent(typ, connectionID string, at time.Time) storage.AuditEvent {
	return storage.AuditEvent{
		Time:         at,
		Type:         typ,
		ConnectionID: connectionID,
		ProviderID:   "prov-1",
		Actor:        "agent-a",
		ClientIP:     "192.0.2.7",
		UserAgent:    "dromos-test/1",
		Detail:       map[string]string{"reason": typ},
	}
}

func runAudit(t *testing.T, open func(t *testing.T) storage.Storage) {
	t.Run("AppendBatchAllOrNothing", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		bad := newEvent("bad", "c1", time.Time{})
		if err := s.AppendAudit(ctx, newEvent("a", "c1", baseTime()), bad); err == nil {
			t.Fatal("a batch holding an event without time was accepted")
		}
		got, err := s.ListAudit(ctx, storage.AuditFilter{})
		must(t, "ListAudit", err)
		if len(got) != 0 {
			t.Fatalf("a refused batch left %d events", len(got))
		}
		batch := []storage.AuditEvent{newEvent("a", "c1", baseTime()), newEvent("b", "c1", baseTime().Add(time.Second)), newEvent("c", "c2", baseTime().Add(2*time.Second))}
		must(t, "AppendAudit", s.AppendAudit(ctx, batch...))
		must(t, "AppendAudit (empty)", s.AppendAudit(ctx))
		got, err = s.ListAudit(ctx, storage.AuditFilter{})
		must(t, "ListAudit", err)
		if len(got) != 3 || got[0].Type != "c" || got[2].Type != "a" {
			t.Fatalf("batch stored %d events: %+v", len(got), got)
		}
	})
	t.Run("PruneOlderThan", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		for i := 0; i < 5; i++ {
			must(t, "AppendAudit", s.AppendAudit(ctx, newEvent("e", "c1", baseTime().Add(time.Duration(i)*time.Hour))))
		}
		n, err := s.PruneAudit(ctx, baseTime().Add(2*time.Hour))
		must(t, "PruneAudit", err)
		if n != 2 {
			t.Fatalf("pruned %d, want 2", n)
		}
		got, err := s.ListAudit(ctx, storage.AuditFilter{})
		must(t, "ListAudit", err)
		if len(got) != 3 || got[len(got)-1].Time.Before(baseTime().Add(2*time.Hour).Truncate(time.Microsecond)) {
			t.Fatalf("left %d events, oldest %v", len(got), got[len(got)-1].Time)
		}
	})
	t.Run("PruneManyInBatches", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		const old = 12001 // more than two pruning batches
		events := make([]storage.AuditEvent, 0, old)
		for i := range old {
			events = append(events, newEvent("old", "c1", baseTime().Add(time.Duration(i)*time.Millisecond)))
		}
		must(t, "AppendAudit", s.AppendAudit(ctx, events...))
		must(t, "AppendAudit", s.AppendAudit(ctx, newEvent("new", "c1", baseTime().Add(time.Hour))))
		n, err := s.PruneAudit(ctx, baseTime().Add(30*time.Minute))
		must(t, "PruneAudit", err)
		got, err := s.ListAudit(ctx, storage.AuditFilter{Limit: 10})
		must(t, "ListAudit", err)
		if n != old || len(got) != 1 || got[0].Type != "new" {
			t.Fatalf("pruned %d of %d, left %d", n, old, len(got))
		}
	})
	t.Run("AppendListNewestFirst", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		events := []storage.AuditEvent{
			newEvent("b", "c1", baseTime().Add(2*time.Second)),
			newEvent("a", "c1", baseTime()),
			newEvent("c", "c2", baseTime().Add(3*time.Second)),
		}
		for _, e := range events {
			e.ID = 12345 // ignored: the backend assigns ids
			must(t, "AppendAudit", s.AppendAudit(ctx, e))
		}
		got, err := s.ListAudit(ctx, storage.AuditFilter{})
		must(t, "ListAudit", err)
		if len(got) != 3 {
			t.Fatalf("ListAudit returned %d events, want 3", len(got))
		}
		ids := map[int64]bool{}
		for i, want := range []storage.AuditEvent{events[2], events[0], events[1]} {
			if got[i].ID <= 0 || ids[got[i].ID] {
				t.Errorf("event %d: id %d not positive and unique", i, got[i].ID)
			}
			ids[got[i].ID] = true
			want.ID = got[i].ID
			checkEqual(t, fmt.Sprintf("event %d", i), got[i], want)
		}
		// Appended second, "a" got a later id than "b".
		if got[2].ID <= got[1].ID {
			t.Errorf("ids %d (appended first) and %d: want increasing with appends", got[1].ID, got[2].ID)
		}
	})

	t.Run("Filters", func(t *testing.T) {
		s := open(t)
		for i := range 5 {
			conn := "c1"
			if i%2 == 1 {
				conn = "c2"
			}
			must(t, "AppendAudit", s.AppendAudit(t.Context(), newEvent(fmt.Sprintf("e%d", i), conn, baseTime().Add(time.Duration(i)*time.Minute))))
		}
		for _, tc := range []struct {
			name string
			f    storage.AuditFilter
			want []string
		}{
			{"all", storage.AuditFilter{}, []string{"e4", "e3", "e2", "e1", "e0"}},
			{"connection", storage.AuditFilter{ConnectionID: "c2"}, []string{"e3", "e1"}},
			{"unknown connection", storage.AuditFilter{ConnectionID: "nope"}, nil},
			{"since is inclusive", storage.AuditFilter{Since: baseTime().Add(2 * time.Minute)}, []string{"e4", "e3", "e2"}},
			{"since just after an event, in UTC", storage.AuditFilter{Since: baseTime().Add(2*time.Minute + time.Microsecond).UTC()}, []string{"e4", "e3"}},
			{"since and connection", storage.AuditFilter{ConnectionID: "c1", Since: baseTime().Add(time.Minute)}, []string{"e4", "e2"}},
			{"limit", storage.AuditFilter{Limit: 2}, []string{"e4", "e3"}},
			{"limit and connection", storage.AuditFilter{ConnectionID: "c1", Limit: 1}, []string{"e4"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.ListAudit(t.Context(), tc.f)
				must(t, "ListAudit", err)
				var types []string
				for _, e := range got {
					types = append(types, e.Type)
				}
				if !slices.Equal(types, tc.want) {
					t.Fatalf("ListAudit(%+v) = %q, want %q", tc.f, types, tc.want)
				}
			})
		}
	})

	t.Run("SameTimeNewestAppendFirst", func(t *testing.T) {
		s := open(t)
		for _, typ := range []string{"first", "second", "third"} {
			must(t, "AppendAudit", s.AppendAudit(t.Context(), newEvent(typ, "c1", baseTime())))
		}
		got, err := s.ListAudit(t.Context(), storage.AuditFilter{})
		must(t, "ListAudit", err)
		var types []string
		for _, e := range got {
			types = append(types, e.Type)
		}
		if want := []string{"third", "second", "first"}; !slices.Equal(types, want) {
			t.Fatalf("ListAudit = %q, want %q", types, want)
		}
	})

	t.Run("DefaultLimit", func(t *testing.T) {
		s := open(t)
		for i := range 101 {
			must(t, "AppendAudit", s.AppendAudit(t.Context(), newEvent("e", "c1", baseTime().Add(time.Duration(i)*time.Second))))
		}
		got, err := s.ListAudit(t.Context(), storage.AuditFilter{})
		must(t, "ListAudit", err)
		if len(got) != 100 {
			t.Fatalf("ListAudit without limit returned %d, want 100", len(got))
		}
	})

	t.Run("NilAndEmptyDetail", func(t *testing.T) {
		s := open(t)
		for _, d := range []map[string]string{nil, {}} {
			e := newEvent("e", "c1", baseTime())
			e.Detail = d
			must(t, "AppendAudit", s.AppendAudit(t.Context(), e))
		}
		got, err := s.ListAudit(t.Context(), storage.AuditFilter{})
		must(t, "ListAudit", err)
		for i, e := range got {
			if e.Detail != nil {
				t.Errorf("event %d: Detail %#v, want nil", i, e.Detail)
			}
		}
	})

	t.Run("ZeroTimeRefused", func(t *testing.T) {
		s := open(t)
		if err := s.AppendAudit(t.Context(), newEvent("e", "c1", time.Time{})); err == nil {
			t.Fatal("AppendAudit accepted an event without time")
		}
		got, err := s.ListAudit(t.Context(), storage.AuditFilter{})
		must(t, "ListAudit", err)
		if len(got) != 0 {
			t.Fatalf("refused event stored: %d events", len(got))
		}
	})
}
