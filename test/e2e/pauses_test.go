package e2e

import (
	"strings"
	"testing"
	"time"
)

// The write checker's interruptions: gaps under 3 s apart are one (a
// switchover's stop and its route settling), gaps further apart two.
func TestPausesJoinCloseGaps(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	at := func(ms ...int) []time.Time {
		var out []time.Time
		for _, m := range ms {
			out = append(out, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return out
	}
	steady := func(from, to int) []time.Time { // a commit every 100 ms
		var ms []int
		for m := from; m <= to; m += 100 {
			ms = append(ms, m)
		}
		return at(ms...)
	}
	for _, tt := range []struct {
		name  string
		acked []time.Time
		want  string
	}{
		{"no gap", at(0, 10, 20), ""},
		{"one gap", at(0, 10, 650, 660), "640ms"},
		{"a switchover in two gaps", at(0, 10, 650, 660, 700, 990), "640ms+290ms"},
		{"two interruptions", append(at(0, 10, 650), append(steady(660, 5000), at(5300)...)...), "640ms 340ms"},
	} {
		w := &rwWriter{ackedAt: tt.acked}
		if got := strings.Join(w.pauses(200*time.Millisecond), " "); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
