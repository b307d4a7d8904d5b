package instance

import (
	"testing"
	"time"
)

// TestPostgresGone: a holder gives the Lease up only for a crash loop
// that has lasted a Lease duration, never for a slow start or a long
// crash recovery (the postmaster running, no further crash).
func TestPostgresGone(t *testing.T) {
	const d = 15 * time.Second
	for _, tc := range []struct {
		crashes int
		down    time.Duration
		want    bool
	}{
		{3, d, true},
		{10, 2 * d, true},
		{2, time.Hour, false},        // one crash, then a long recovery
		{0, time.Hour, false},        // a slow start
		{50, d - time.Second, false}, // crashing, but not for long yet
	} {
		if got := postgresGone(tc.crashes, tc.down, d); got != tc.want {
			t.Errorf("postgresGone(%d, %s) = %v, want %v", tc.crashes, tc.down, got, tc.want)
		}
	}
}
