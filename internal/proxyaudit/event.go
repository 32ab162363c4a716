package proxyaudit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"

	"github.com/dromos-dev/dromos/internal/ctrlchar"
	"github.com/dromos-dev/dromos/internal/storage"
)

// EventType is the audit type of a proxied call's row.
const EventType = "proxy.call"

// Limits of one event and one batch. A full batch of events at their
// largest stays well under the broker's 1 MiB request body limit.
const (
	MaxBatch    = 500
	MaxAgent    = 256
	MaxProvider = 256
	MaxMethod   = 32
	MaxHost     = 255
	MaxPath     = 1024
	maxBytes    = 1 << 40
	maxDuration = 24 * time.Hour
	// maxAge and maxSkew bound an event's time against the broker's clock:
	// a gateway flushes every second, so anything older was held back.
	maxAge  = 24 * time.Hour
	maxSkew = 5 * time.Minute
)

// Event is one proxied call as the gateway saw it. It holds no query,
// header, body or token.
type Event struct {
	Time  time.Time `json:"time"`
	Agent string    `json:"agent"`
	// ConnectionID is empty when the call named no well-formed id.
	ConnectionID string `json:"connection_id"`
	// Provider is the provider's name, empty when the call was refused
	// before the provider was known.
	Provider string `json:"provider"`
	Method   string `json:"method"`
	// Host and Path are the upstream URL's, without the query; empty when
	// the call was refused before an upstream URL was made.
	Host string `json:"host"`
	Path string `json:"path"`
	// Status is the status the agent received (the provider's, or the
	// gateway's own refusal); 0 when the answer was cut short.
	Status     int   `json:"status"`
	BytesIn    int64 `json:"bytes_in"`
	BytesOut   int64 `json:"bytes_out"`
	DurationUS int64 `json:"duration_us"`
	// Retried: a provider 401 led to one refresh and a second attempt.
	Retried bool `json:"retried"`
}

// maxBatchBytes bounds a batch's JSON encoding, well under the broker's
// 1 MiB body limit.
const maxBatchBytes = 768 << 10

// maxEncodedSize is the most e's JSON encoding can take: every byte of
// text escaped as \u00XX, and the names, numbers and punctuation.
func (e Event) maxEncodedSize() int {
	return 6*(len(e.Agent)+len(e.ConnectionID)+len(e.Provider)+len(e.Method)+len(e.Host)+len(e.Path)) + 256
}

// Batch is the body of the broker's POST /audit/proxy-calls.
type Batch struct {
	Events []Event `json:"events"`
}

// Clipped is e made acceptable to Check whatever the call was, so that
// one odd call never sinks the batch it travels in: text over its limit
// is cut on a character boundary (a long path is audited in part), a
// field that could not be stored as it is goes empty (a method that is no
// HTTP token becomes "OTHER"), numbers out of range are clamped.
func (e Event) Clipped() Event {
	if e.Agent = clip(plain(e.Agent), MaxAgent); e.Agent == "" {
		e.Agent = "unknown"
	}
	e.Provider = clip(plain(e.Provider), MaxProvider)
	if !canonicalUUID(e.ConnectionID) {
		e.ConnectionID = ""
	}
	if len(e.Method) > MaxMethod || !httpguts.ValidHeaderFieldName(e.Method) {
		e.Method = "OTHER"
	}
	if e.Host = clip(e.Host, MaxHost); ctrlchar.Index(e.Host) >= 0 || strings.ContainsAny(e.Host, hostRefused) {
		e.Host = ""
	}
	if e.Path = clip(e.Path, MaxPath); ctrlchar.Index(e.Path) >= 0 || badPath(e.Path) {
		e.Path = ""
	}
	if e.Status < 100 || e.Status > 599 {
		e.Status = 0
	}
	e.BytesIn, e.BytesOut = min(max(e.BytesIn, 0), maxBytes), min(max(e.BytesOut, 0), maxBytes)
	e.DurationUS = min(max(e.DurationUS, 0), maxDuration.Microseconds())
	return e
}

// hostRefused are the characters that would make a host more than a host
// name and port.
const hostRefused = "/@?# \\"

func badPath(p string) bool { return p != "" && (p[0] != '/' || strings.ContainsAny(p, "?#")) }

// plain is s without control characters, invalid UTF-8 replaced.
func plain(s string) string {
	if ctrlchar.Index(s) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

func clip(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// Check reports every problem of b at once, naming events by index and
// fields by name, never quoting a value. now is the receiver's clock.
func (b Batch) Check(now time.Time) error {
	if len(b.Events) == 0 {
		return errors.New("events must hold at least one event")
	}
	if len(b.Events) > MaxBatch {
		return fmt.Errorf("events may hold at most %d events", MaxBatch)
	}
	var probs []string
	for i, e := range b.Events {
		for _, p := range e.problems(now) {
			probs = append(probs, fmt.Sprintf("events[%d]: %s", i, p))
			if len(probs) == 10 {
				probs = append(probs, "…")
				return errors.New(strings.Join(probs, "; "))
			}
		}
	}
	if len(probs) > 0 {
		return errors.New(strings.Join(probs, "; "))
	}
	return nil
}

func (e Event) problems(now time.Time) []string {
	var probs []string
	text := func(field, v string, required bool, limit int) {
		switch {
		case v == "" && required:
			probs = append(probs, field+" is required")
		case len(v) > limit:
			probs = append(probs, fmt.Sprintf("%s must be at most %d bytes", field, limit))
		default:
			if err := ctrlchar.Check(field, v); err != nil {
				probs = append(probs, err.Error())
			}
		}
	}
	switch {
	case e.Time.IsZero():
		probs = append(probs, "time is required")
	case e.Time.Before(now.Add(-maxAge)) || e.Time.After(now.Add(maxSkew)):
		probs = append(probs, "time must be within the last 24 hours")
	}
	text("agent", e.Agent, true, MaxAgent)
	if e.ConnectionID != "" && !canonicalUUID(e.ConnectionID) {
		probs = append(probs, "connection_id must be empty or a lower-case UUID")
	}
	text("provider", e.Provider, false, MaxProvider)
	if len(e.Method) > MaxMethod || !httpguts.ValidHeaderFieldName(e.Method) {
		probs = append(probs, fmt.Sprintf("method must be an HTTP method token of at most %d bytes", MaxMethod))
	}
	text("host", e.Host, false, MaxHost)
	if strings.ContainsAny(e.Host, hostRefused) {
		probs = append(probs, "host must be a host name and port only")
	}
	text("path", e.Path, false, MaxPath)
	if badPath(e.Path) {
		probs = append(probs, "path must be an escaped absolute path without a query or fragment")
	}
	if e.Status != 0 && (e.Status < 100 || e.Status > 599) {
		probs = append(probs, "status must be 0 or from 100 to 599")
	}
	if e.BytesIn < 0 || e.BytesIn > maxBytes || e.BytesOut < 0 || e.BytesOut > maxBytes {
		probs = append(probs, "bytes_in and bytes_out must be from 0 to 2^40")
	}
	if e.DurationUS < 0 || e.DurationUS > maxDuration.Microseconds() {
		probs = append(probs, "duration_us must be from 0 to 24 hours")
	}
	return probs
}

// Ownership is what the broker found of an event's connection.
type Ownership string

// The ownership values a row records.
const (
	// OwnedByAgent: the connection is the calling agent's.
	OwnedByAgent Ownership = "agent"
	// OwnedByOther: the connection exists but is another agent's (the
	// proxy answered 404).
	OwnedByOther Ownership = "other_agent"
	// NoConnection: no such connection, or none named.
	NoConnection Ownership = "no_connection"
)

// Row is e as an audit row; the broker fills in the provider id, client
// address and user agent. ownership says whether the connection is the
// agent's, so that a row never claims more than the broker checked.
func (e Event) Row(ownership Ownership) storage.AuditEvent {
	return storage.AuditEvent{
		Time: e.Time.UTC(), Type: EventType, ConnectionID: e.ConnectionID, Actor: e.Agent,
		Detail: map[string]string{
			"provider": e.Provider, "method": e.Method, "host": e.Host, "path": e.Path,
			"status": strconv.Itoa(e.Status), "bytes_in": strconv.FormatInt(e.BytesIn, 10),
			"bytes_out":   strconv.FormatInt(e.BytesOut, 10),
			"duration_ms": strconv.FormatFloat(float64(e.DurationUS)/1000, 'f', 3, 64),
			"retried":     strconv.FormatBool(e.Retried), "ownership": string(ownership),
		},
	}
}

// canonicalUUID reports whether s is a UUID in its lower-case 8-4-4-4-12
// form, the only form connection ids take.
func canonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}
