package storagetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/dromos-dev/dromos/internal/storage"
)

// Run runs the conformance suite as subtests. open must return an empty,
// migrated store for each call and close it through t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) storage.Storage) {
	t.Run("Providers", func(t *testing.T) { runProviders(t, open) })
	t.Run("Connections", func(t *testing.T) { runConnections(t, open) })
	t.Run("Tokens", func(t *testing.T) { runTokens(t, open) })
	t.Run("Concurrency", func(t *testing.T) { runConcurrency(t, open) })
	t.Run("Refresh", func(t *testing.T) { runRefresh(t, open) })
	t.Run("Audit", func(t *testing.T) { runAudit(t, open) })
	t.Run("Retention", func(t *testing.T) { runRetention(t, open) })
	t.Run("StepUps", func(t *testing.T) { runStepUps(t, open) })
	t.Run("MCPClients", func(t *testing.T) { runMCPClients(t, open) })
	t.Run("Webhooks", func(t *testing.T) { runWebhooks(t, open) })
	t.Run("Confirmation", func(t *testing.T) { runConfirmation(t, open) })
	t.Run("ConfirmationSweep", func(t *testing.T) { runSweep(t, open) })
	t.Run("Listing", func(t *testing.T) { runListing(t, open) })
	t.Run("Revocations", func(t *testing.T) { runRevocations(t, open) })
	t.Run("DeviceGrants", func(t *testing.T) { runDeviceGrants(t, open) })
	t.Run("Ping", func(t *testing.T) {
		s := open(t)
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

// baseTime has nanoseconds and a zone other than UTC on purpose: backends
// must return UTC and keep at least the microseconds.
func baseTime() time.Time {
	return time.Date(2031, time.May, 6, 7, 8, 9, 123456789, time.FixedZone("UTC+2", 2*60*60))
}

// errBoom is what test closures fail with; the suite checks that it comes
// back through errors.Is.
var errBoom = errors.New("storagetest: closure failed")

// norm makes a value comparable with reflect.DeepEqual: every time.Time
// field (top level) is truncated to the microsecond and put in UTC.
func norm[T any](v T) T {
	rv := reflect.ValueOf(&v).Elem()
	for i := range rv.NumField() {
		f := rv.Field(i)
		if t, ok := f.Interface().(time.Time); ok {
			f.Set(reflect.ValueOf(t.UTC().Truncate(time.Microsecond)))
		}
	}
	return v
}

// checkUTC fails for any non-zero time field not in UTC.
func checkUTC[T any](t *testing.T, v T) {
	t.Helper()
	rv := reflect.ValueOf(v)
	for i := range rv.NumField() {
		if tm, ok := rv.Field(i).Interface().(time.Time); ok && !tm.IsZero() && tm.Location() != time.UTC {
			t.Errorf("%s = %v: location %v, want UTC", rv.Type().Field(i).Name, tm, tm.Location())
		}
	}
}

// checkEqual compares got with want (times to the microsecond) and checks
// got's times are UTC.
func checkEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	checkUTC(t, got)
	g, w := norm(got), norm(want)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s differs:\n got: %s\nwant: %s", what, dump(g), dump(w))
	}
}

// dump prints field by field, with nil and empty told apart.
func dump(v any) string {
	rv := reflect.ValueOf(v)
	out := "{"
	for i := range rv.NumField() {
		f := rv.Field(i)
		s := fmt.Sprintf("%#v", f.Interface())
		if tm, ok := f.Interface().(time.Time); ok {
			s = tm.Format(time.RFC3339Nano)
		}
		out += fmt.Sprintf("\n\t%s: %s", rv.Type().Field(i).Name, s)
	}
	return out + "\n}"
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
