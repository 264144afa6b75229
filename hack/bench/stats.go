package main

import (
	"slices"
	"time"
)

// number is what median averages.
type number interface{ ~int | ~int64 | ~float64 }

// median returns the median of xs (the mean of the middle two for an even
// count), or zero for none.
func median[T number](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile returns the p-th percentile (0 < p ≤ 100) of sorted durations
// by the nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// latencySummary is the distribution of a set of latencies.
type latencySummary struct {
	n                        int
	p50, p90, p99, p999, max time.Duration
}

func summarize(ds []time.Duration) latencySummary {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return latencySummary{}
	}
	return latencySummary{
		n:    len(s),
		p50:  percentile(s, 50),
		p90:  percentile(s, 90),
		p99:  percentile(s, 99),
		p999: percentile(s, 99.9),
		max:  s[len(s)-1],
	}
}
