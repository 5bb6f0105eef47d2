package stats

import (
	"math"
	"sort"
)

// Rank returns the ranks of x, 1-based, ties given the average of the ranks they
// span (scipy.stats.rankdata, method="average").
func Rank(x []float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] < x[idx[b]] })
	r := make([]float64, len(x))
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && x[idx[j]] == x[idx[i]] {
			j++
		}
		avg := float64(i+j+1) / 2 // mean of ranks i+1 .. j
		for k := i; k < j; k++ {
			r[idx[k]] = avg
		}
		i = j
	}
	return r
}

// tieCounts returns the sizes of the groups of equal values of x that have more
// than one member.
func tieCounts(x []float64) []int {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	var out []int
	for i := 0; i < len(s); {
		j := i + 1
		for j < len(s) && s[j] == s[i] {
			j++
		}
		if j-i > 1 {
			out = append(out, j-i)
		}
		i = j
	}
	return out
}

// normSF is the standard normal survival function 1 − Φ(z) = ½·erfc(z/√2)
// (scipy.stats.norm.sf).
func normSF(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// normPPF is the standard normal quantile Φ⁻¹(p) (scipy.special.ndtri).
func normPPF(p float64) float64 {
	switch {
	case p <= 0:
		return math.Inf(-1)
	case p >= 1:
		return math.Inf(1)
	}
	return -math.Sqrt2 * math.Erfcinv(2*p)
}

// normCDF is Φ(z) = ½·erfc(−z/√2) (scipy.special.ndtr).
func normCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

func constant(x []float64) bool {
	for _, v := range x {
		if v != x[0] {
			return false
		}
	}
	return true
}

func clip01(p float64) float64 { return math.Min(1, math.Max(0, p)) }
