package requests

import (
	"testing"
	"time"
)

func TestNextAttempt(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		attempts  int32
		transient bool
		jitter    float64
		want      time.Duration
	}{
		{"first transient failure, no shift", 1, true, 0.5, 5 * time.Second},
		{"first transient failure, earliest", 1, true, 0, 4 * time.Second},
		{"first transient failure, latest", 1, true, 0.999999, 6 * time.Second},
		{"third transient failure doubles twice", 3, true, 0.5, 20 * time.Second},
		{"backoff is capped", 40, true, 0.5, 5 * time.Minute},
		{"capped backoff still spreads", 40, true, 0, 4 * time.Minute},
		{"permanent failure", 1, false, 0.5, 10 * time.Minute},
		{"permanent failure spreads too", 7, false, 0.75, 11 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			restore := Jitter
			t.Cleanup(func() { Jitter = restore })
			Jitter = func() float64 { return tc.jitter }
			got := NextAttempt(now, tc.attempts, tc.transient).Sub(now)
			if d := got - tc.want; d < -time.Millisecond || d > time.Millisecond {
				t.Fatalf("NextAttempt after %d attempts: in %s, want %s", tc.attempts, got, tc.want)
			}
		})
	}
}

// TestNextAttemptSpreads: requests failing together do not retry together, and every retry stays
// within ±20% of the nominal backoff.
func TestNextAttemptSpreads(t *testing.T) {
	now := time.Now()
	seen := map[time.Time]bool{}
	for range 1000 {
		at := NextAttempt(now, 2, true)
		if d := at.Sub(now); d < 8*time.Second || d > 12*time.Second {
			t.Fatalf("retry in %s, want within 8s..12s", d)
		}
		seen[at] = true
	}
	if len(seen) < 900 {
		t.Fatalf("1000 retries fell on only %d distinct times", len(seen))
	}
}
