package stats

import (
	"errors"
	"fmt"
	"math"
)

// Histogram counts values in bins equal-width bins spanning [min, max] and returns the
// bins+1 edges and the density of each bin, count / (n · width), so that the densities
// integrate to 1: numpy.histogram(values, bins, density=True), including its range
// [v − 0.5, v + 0.5] when every value is v and its last bin closed on the right.
// Non-finite values are an error.
func Histogram(values []float64, bins int) (edges, density []float64, err error) {
	if bins < 1 {
		return nil, nil, fmt.Errorf("histogram: %d bins, at least 1 expected", bins)
	}
	if len(values) == 0 {
		return nil, nil, errors.New("histogram: no values")
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, nil, fmt.Errorf("histogram: value %d is %v", i, v)
		}
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if lo == hi {
		lo, hi = lo-0.5, hi+0.5
	}
	edges = make([]float64, bins+1)
	for i := range edges {
		edges[i] = lo + (hi-lo)*float64(i)/float64(bins)
	}
	edges[bins] = hi
	counts := make([]float64, bins)
	for _, v := range values {
		k := int(float64(bins) * (v - lo) / (hi - lo))
		k = min(max(k, 0), bins-1)
		// The computed bin can be off by one at an edge: numpy compares with the edges.
		if k > 0 && v < edges[k] {
			k--
		} else if k < bins-1 && v >= edges[k+1] {
			k++
		}
		counts[k]++
	}
	density = make([]float64, bins)
	for i, c := range counts {
		density[i] = c / (float64(len(values)) * (edges[i+1] - edges[i]))
	}
	return edges, density, nil
}
