package proxyaudit

import (
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 12, 4, 19, 0, 0, 0, time.UTC)

func goodEvent() Event {
	return Event{Time: now.Add(-time.Second), Agent: "agent-a", ConnectionID: "0b9c3a8e-6f7d-4c1e-9a2b-3c4d5e6f7a8b",
		Provider: "google", Method: "GET", Host: "www.googleapis.com", Path: "/gmail/v1/users/me%2Fx",
		Status: 200, BytesIn: 0, BytesOut: 512, DurationUS: 1500}
}

func TestCheckRefusesWhatCannotBeStored(t *testing.T) {
	for name, edit := range map[string]func(*Event){
		"no time":             func(e *Event) { e.Time = time.Time{} },
		"time from yesterday": func(e *Event) { e.Time = now.Add(-25 * time.Hour) },
		"time in the future":  func(e *Event) { e.Time = now.Add(time.Hour) },
		"no agent":            func(e *Event) { e.Agent = "" },
		"agent too long":      func(e *Event) { e.Agent = strings.Repeat("a", MaxAgent+1) },
		"control in agent":    func(e *Event) { e.Agent = "agent\n-b" },
		"invalid UTF-8":       func(e *Event) { e.Provider = "goo\xffgle" },
		"upper-case id":       func(e *Event) { e.ConnectionID = strings.ToUpper(e.ConnectionID) },
		"id not a UUID":       func(e *Event) { e.ConnectionID = "../etc" },
		"method not a token":  func(e *Event) { e.Method = "GET /" },
		"no method":           func(e *Event) { e.Method = "" },
		"host with a path":    func(e *Event) { e.Host = "evil.test/x" },
		"host with user":      func(e *Event) { e.Host = "user@evil.test" },
		"path with a query":   func(e *Event) { e.Path = "/x?token=abc" },
		"relative path":       func(e *Event) { e.Path = "x" },
		"path too long":       func(e *Event) { e.Path = "/" + strings.Repeat("a", MaxPath) },
		"control in path":     func(e *Event) { e.Path = "/x\x00" },
		"status out of range": func(e *Event) { e.Status = 99 },
		"negative bytes":      func(e *Event) { e.BytesIn = -1 },
		"absurd duration":     func(e *Event) { e.DurationUS = (25 * time.Hour).Microseconds() },
	} {
		t.Run(name, func(t *testing.T) {
			e := goodEvent()
			edit(&e)
			err := Batch{Events: []Event{goodEvent(), e}}.Check(now)
			if err == nil || !strings.Contains(err.Error(), "events[1]") {
				t.Fatalf("Check: %v, want a problem of events[1]", err)
			}
			if strings.Contains(err.Error(), "token=abc") || strings.Contains(err.Error(), "evil.test") {
				t.Fatalf("the error quotes a value: %v", err)
			}
			// What the gateway sends after Clipped always passes.
			if err := (Batch{Events: []Event{e.Clipped()}}).Check(now); err != nil && !strings.Contains(name, "time") {
				t.Fatalf("Clipped still refused: %v", err)
			}
		})
	}
	if err := (Batch{Events: []Event{goodEvent()}}).Check(now); err != nil {
		t.Fatalf("a good event refused: %v", err)
	}
	if err := (Batch{}).Check(now); err == nil {
		t.Fatal("an empty batch accepted")
	}
	if err := (Batch{Events: make([]Event, MaxBatch+1)}).Check(now); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("an oversized batch: %v", err)
	}
}

func TestClippedKeepsWhatIsFine(t *testing.T) {
	e := goodEvent()
	if got := e.Clipped(); got != e {
		t.Fatalf("Clipped changed a good event: %+v", got)
	}
	e.Path = "/" + strings.Repeat("é", MaxPath)
	got := e.Clipped()
	if len(got.Path) > MaxPath || !strings.HasPrefix(got.Path, "/éé") || strings.ContainsRune(got.Path, '\uFFFD') {
		t.Fatalf("long path clipped to %d bytes, %q…", len(got.Path), got.Path[:8])
	}
}

func TestRowHoldsTheCallAndTheOwnership(t *testing.T) {
	row := goodEvent().Row(OwnedByOther)
	want := map[string]string{"provider": "google", "method": "GET", "host": "www.googleapis.com",
		"path": "/gmail/v1/users/me%2Fx", "status": "200", "bytes_in": "0", "bytes_out": "512",
		"duration_ms": "1.500", "retried": "false", "ownership": "other_agent"}
	if row.Type != EventType || row.Actor != "agent-a" || row.ConnectionID != goodEvent().ConnectionID || !row.Time.Equal(goodEvent().Time) {
		t.Fatalf("row %+v", row)
	}
	for k, v := range want {
		if row.Detail[k] != v {
			t.Errorf("detail %s = %q, want %q", k, row.Detail[k], v)
		}
	}
	if len(row.Detail) != len(want) {
		t.Errorf("detail has %d members, want %d: %v", len(row.Detail), len(want), row.Detail)
	}
}
