package main

import (
	"math"
	"slices"
)

// round rounds x to n decimal places.
func round(x float64, n int) float64 {
	p := math.Pow(10, float64(n))
	return math.Round(x*p) / p
}

// summary is the distribution of a latency, in seconds.
type summary struct {
	N   int     `json:"n"`
	Min float64 `json:"min"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// summarize sorts xs and returns its distribution (nearest-rank
// percentiles).
func summarize(xs []float64) summary {
	if len(xs) == 0 {
		return summary{}
	}
	slices.Sort(xs)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(xs)))) - 1
		return round(xs[max(0, min(i, len(xs)-1))], 3)
	}
	return summary{N: len(xs), Min: round(xs[0], 3), P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), Max: round(xs[len(xs)-1], 3)}
}
