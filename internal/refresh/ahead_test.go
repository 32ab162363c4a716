package refresh

import (
	"testing"
	"time"
)

func TestNextBatch(t *testing.T) {
	opts := AheadOptions{Batch: 50, MaxBatch: 400}
	for _, tc := range []struct {
		name           string
		cur, got, want int
	}{
		{"full pass doubles", 50, 50, 100},
		{"full again doubles again", 100, 100, 200},
		{"capped at the maximum", 400, 400, 400},
		{"doubling stops at the maximum", 300, 300, 400},
		{"half full keeps", 200, 100, 200},
		{"under half halves", 200, 99, 100},
		{"empty pass halves", 400, 0, 200},
		{"never under the base batch", 50, 0, 50},
		{"never under the base batch from above", 80, 10, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nextBatch(tc.cur, tc.got, opts); got != tc.want {
				t.Fatalf("nextBatch(%d, %d) = %d, want %d", tc.cur, tc.got, got, tc.want)
			}
		})
	}
}

func TestAheadDefaults(t *testing.T) {
	var o AheadOptions
	o.Defaults()
	if o.Batch != 50 || o.MaxBatch != 1000 || o.ReadWindow != time.Hour || o.Concurrency != 4 {
		t.Fatalf("defaults %+v", o)
	}
	o = AheadOptions{Batch: 2000}
	o.Defaults()
	if o.MaxBatch != 2000 {
		t.Fatalf("MaxBatch %d below Batch 2000", o.MaxBatch)
	}
	if got := claimFor(AheadOptions{Interval: 15 * time.Second}); got != 2*time.Minute {
		t.Fatalf("claimFor(15 s) = %v", got)
	}
	if got := claimFor(AheadOptions{Interval: time.Minute}); got != 4*time.Minute {
		t.Fatalf("claimFor(1 min) = %v", got)
	}
}
