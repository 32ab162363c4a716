package rejections_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/rejections"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/storage/sqlite"
)

func rows(t *testing.T, s storage.Storage) []storage.AuditEvent {
	t.Helper()
	events, err := s.ListAudit(context.Background(), storage.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func TestWindowsAggregateAndBound(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "d.db"), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	a := rejections.New(s, rejections.Options{Window: time.Hour, MaxKeys: 3, Now: func() time.Time { return now }})
	ip := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	for range 1000 {
		a.Record("invalid_state", ip("192.0.2.1"))
	}
	a.Record("invalid_state", ip("::ffff:192.0.2.2")) // the same address as 192.0.2.2
	a.Record("invalid_state", ip("192.0.2.2"))
	a.Record("replayed", netip.Addr{})
	for i := range 50 {
		a.Record("invalid_state", netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
	}
	a.Flush(context.Background())
	got := rows(t, s)
	if len(got) != 4 {
		t.Fatalf("%d rows, want 3 pairs and one overflow row: %+v", len(got), got)
	}
	counts := map[string]string{}
	for _, e := range got {
		if e.Type != rejections.EventType {
			t.Fatalf("type %q", e.Type)
		}
		counts[e.Detail["reason"]+"@"+e.ClientIP] = e.Detail["count"]
	}
	want := map[string]string{"invalid_state@192.0.2.1": "1000", "invalid_state@192.0.2.2": "2", "replayed@": "1", "invalid_state@": "50"}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("%s: count %q, want %q (all: %v)", k, counts[k], v, counts)
		}
	}
	// A new window starts empty; Close writes what it holds.
	a.Flush(context.Background())
	if n := len(rows(t, s)); n != 4 {
		t.Fatalf("an empty window wrote rows: %d", n)
	}
	a.Record("expired", ip("192.0.2.9"))
	a.Close()
	got = rows(t, s)
	if len(got) != 5 || got[0].Detail["reason"] != "expired" || got[0].Detail["count"] != strconv.Itoa(1) {
		t.Fatalf("after Close: %+v", got)
	}
}

func TestWindowEndWritesWithoutFlush(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "d.db"), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	a := rejections.New(s, rejections.Options{Window: 50 * time.Millisecond})
	defer a.Close()
	a.Record("invalid_state", netip.MustParseAddr("192.0.2.1"))
	deadline := time.Now().Add(5 * time.Second)
	for len(rows(t, s)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("window ended without writing its row")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
