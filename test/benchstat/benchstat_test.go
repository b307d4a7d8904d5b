package benchstat

import (
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := append([]float64(nil), tc.in...)
		if got := Median(in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Errorf("Median changed its input: %v", in)
			}
		}
	}
	if got := Median([]time.Duration{3 * time.Second, time.Second, 2 * time.Second, 10 * time.Second}); got != 2500*time.Millisecond {
		t.Errorf("Median of durations = %s, want 2.5s", got)
	}
}
