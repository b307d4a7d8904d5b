// Package benchstat holds the statistics the benchmarks under bench/
// report (docs/benchmarks.md asks for the median of several runs), so each
// benchmark computes them the same way.
//
// It must not import `pgsync/...`.
package benchstat

import "slices"

// Median is the middle of xs (the mean of the two middle values for an
// even count; 0 for none); xs is not changed.
func Median[T ~int64 | ~float64](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	switch n := len(s); {
	case n == 0:
		return 0
	case n%2 == 0:
		return (s[n/2-1] + s[n/2]) / 2
	default:
		return s[n/2]
	}
}
