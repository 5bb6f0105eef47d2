package stats

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// PermutationOptions configures PermutationTest.
type PermutationOptions struct {
	// Paired swaps values within pairs (x[i], y[i]) instead of reassigning all
	// values to the two groups (scipy permutation_type "samples" vs "independent").
	Paired bool
	// Resamples bounds the permutations: when the number of distinct ones is at most
	// Resamples all are enumerated (exact test), otherwise Resamples random ones are
	// drawn with Seed. 0 means 9999 (SciPy's default).
	Resamples int
	// Seed seeds the random permutations (PCG); unused by an exact test.
	Seed uint64
}

// PermutationTest tests whether x and y come from the same distribution with the
// statistic mean(x) − mean(y) (scipy.stats.permutation_test, two-sided):
// p = min(1, 2·min(P(T* ≤ t), P(T* ≥ t))) over the permutation distribution T*,
// values within a relative 1e-14 of t counting as equal. An exact test enumerates
// every distinct partition (C(n₁+n₂, n₁), or 2ⁿ sign swaps when paired); a random
// one uses (count+1)/(Resamples+1) (Phipson & Smyth 2010). Method is "exact" or
// "randomized".
func PermutationTest(x, y []float64, opt PermutationOptions) (Result, error) {
	if len(x) < 2 || len(y) < 2 {
		return Result{}, fmt.Errorf("permutation test: each sample needs at least 2 values (got %d and %d)", len(x), len(y))
	}
	if opt.Paired && len(x) != len(y) {
		return Result{}, fmt.Errorf("permutation test: paired %w: %d and %d values", ErrLengths, len(x), len(y))
	}
	if opt.Resamples <= 0 {
		opt.Resamples = 9999
	}
	obs := Mean(x) - Mean(y)
	var null []float64
	exact := false
	if opt.Paired {
		null, exact = pairedNull(x, y, opt)
	} else {
		null, exact = independentNull(x, y, opt)
	}
	adj := 1.0
	method := "randomized"
	if exact {
		adj, method = 0, "exact"
	}
	gamma := math.Max(1e-14, math.Abs(1e-14*obs))
	var le, ge float64
	for _, v := range null {
		if v <= obs+gamma {
			le++
		}
		if v >= obs-gamma {
			ge++
		}
	}
	n := float64(len(null))
	p := 2 * math.Min((le+adj)/(n+adj), (ge+adj)/(n+adj))
	return Result{Statistic: obs, P: clip01(p), Method: method}, nil
}

func independentNull(x, y []float64, opt PermutationOptions) ([]float64, bool) {
	all := append(append([]float64(nil), x...), y...)
	n, n1 := len(all), len(x)
	n2 := n - n1
	var total float64
	for _, v := range all {
		total += v
	}
	if c := binom(n, n1); c <= float64(opt.Resamples) {
		null := make([]float64, 0, int(c))
		idx := make([]int, n1)
		for i := range idx {
			idx[i] = i
		}
		for {
			var s float64
			for _, i := range idx {
				s += all[i]
			}
			null = append(null, s/float64(n1)-(total-s)/float64(n2))
			// next combination in lexicographic order
			i := n1 - 1
			for i >= 0 && idx[i] == n-n1+i {
				i--
			}
			if i < 0 {
				return null, true
			}
			idx[i]++
			for j := i + 1; j < n1; j++ {
				idx[j] = idx[j-1] + 1
			}
		}
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x9e3779b97f4a7c15))
	null := make([]float64, opt.Resamples)
	perm := append([]float64(nil), all...)
	for r := range null {
		rng.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		null[r] = Mean(perm[:n1]) - Mean(perm[n1:])
	}
	return null, false
}

func pairedNull(x, y []float64, opt PermutationOptions) ([]float64, bool) {
	n := len(x)
	stat := func(swap func(i int) bool) float64 {
		var sx, sy float64
		for i := range x {
			if swap(i) {
				sx, sy = sx+y[i], sy+x[i]
			} else {
				sx, sy = sx+x[i], sy+y[i]
			}
		}
		return sx/float64(n) - sy/float64(n)
	}
	if n < 62 && float64(uint64(1)<<n) <= float64(opt.Resamples) {
		null := make([]float64, 0, 1<<n)
		for mask := uint64(0); mask < 1<<n; mask++ {
			null = append(null, stat(func(i int) bool { return mask>>i&1 == 1 }))
		}
		return null, true
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x9e3779b97f4a7c15))
	null := make([]float64, opt.Resamples)
	swaps := make([]bool, n)
	for r := range null {
		for i := range swaps {
			swaps[i] = rng.IntN(2) == 1
		}
		null[r] = stat(func(i int) bool { return swaps[i] })
	}
	return null, false
}

// BootstrapMethod is how Bootstrap turns the bootstrap distribution into an interval.
type BootstrapMethod int

const (
	// BCa is the bias-corrected and accelerated interval (Efron & Tibshirani 1993,
	// §14.3; SciPy's default).
	BCa BootstrapMethod = iota
	// Percentile takes the (1−level)/2 and (1+level)/2 quantiles of the bootstrap
	// distribution.
	Percentile
)

// BootstrapOptions configures Bootstrap.
type BootstrapOptions struct {
	Resamples int     // 0 means 9999 (SciPy's default)
	Level     float64 // confidence level, 0 means 0.95
	Method    BootstrapMethod
	Seed      uint64 // seeds the resampling (PCG)
}

// Interval is a bootstrap confidence interval with the distribution it came from.
type Interval struct {
	Low, High float64
	// Distribution holds the statistic of every resample.
	Distribution []float64
	// StandardError is the sample standard deviation of Distribution.
	StandardError float64
}

// Bootstrap estimates a confidence interval of stat over data by resampling data
// with replacement opt.Resamples times (scipy.stats.bootstrap for one sample; the
// resamples come from Go's PCG seeded with opt.Seed, so they differ from NumPy's).
func Bootstrap(data []float64, stat func([]float64) float64, opt BootstrapOptions) (Interval, error) {
	if len(data) < 2 {
		return Interval{}, fmt.Errorf("bootstrap: at least 2 values needed, got %d", len(data))
	}
	if opt.Resamples <= 0 {
		opt.Resamples = 9999
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0xda3e39cb94b95bdb))
	dist := make([]float64, opt.Resamples)
	buf := make([]float64, len(data))
	for r := range dist {
		for i := range buf {
			buf[i] = data[rng.IntN(len(data))]
		}
		dist[r] = stat(buf)
	}
	lo, hi, err := BootstrapInterval(data, stat, dist, opt.Level, opt.Method)
	// On error (a degenerate BCa interval) the bounds are NaN; the distribution is kept.
	return Interval{Low: lo, High: hi, Distribution: dist, StandardError: math.Sqrt(Variance(dist))}, err
}

// BootstrapInterval returns the confidence interval at level (0 = 0.95) from a
// bootstrap distribution dist of stat over data. Percentile: the α and 1−α
// quantiles, α = (1−level)/2, linearly interpolated (numpy.percentile). BCa: the
// quantiles at α₁ = Φ(ẑ₀ + (ẑ₀+z_α)/(1−â(ẑ₀+z_α))) and α₂ likewise with z_{1−α},
// where ẑ₀ = Φ⁻¹((#{θ* < θ̂} + #{θ* ≤ θ̂})/(2B)) and â = ΣU³/(6(ΣU²)^{3/2}) from
// the jackknife values U_i = (n−1)(θ̄₍.₎ − θ̂₍ᵢ₎) (Efron & Tibshirani 1993, eq. 14.15;
// scipy.stats.bootstrap). A degenerate distribution gives an error.
func BootstrapInterval(data []float64, stat func([]float64) float64, dist []float64, level float64, method BootstrapMethod) (lo, hi float64, err error) {
	if level == 0 {
		level = 0.95
	}
	if !(level > 0 && level < 1) {
		return math.NaN(), math.NaN(), fmt.Errorf("bootstrap: confidence level %v, a value in (0, 1) expected", level)
	}
	if len(dist) == 0 {
		return math.NaN(), math.NaN(), errors.New("bootstrap: empty bootstrap distribution")
	}
	alpha := (1 - level) / 2
	a1, a2 := alpha, 1-alpha
	if method == BCa {
		a1, a2 = bcaLevels(data, stat, dist, alpha)
		if math.IsNaN(a1) || math.IsNaN(a2) {
			return math.NaN(), math.NaN(), errors.New("bootstrap: the BCa interval cannot be computed (degenerate bootstrap distribution)")
		}
	}
	sorted := append([]float64(nil), dist...)
	sort.Float64s(sorted)
	return percentile(sorted, a1*100), percentile(sorted, a2*100), nil
}

func bcaLevels(data []float64, stat func([]float64) float64, dist []float64, alpha float64) (float64, float64) {
	theta := stat(data)
	var less, le float64
	for _, v := range dist {
		if v < theta {
			less++
		}
		if v <= theta {
			le++
		}
	}
	z0 := normPPF((less + le) / (2 * float64(len(dist))))
	n := len(data)
	jack := make([]float64, n)
	buf := make([]float64, n-1)
	for i := range data {
		copy(buf, data[:i])
		copy(buf[i:], data[i+1:])
		jack[i] = stat(buf)
	}
	dot := Mean(jack)
	var num, den float64
	nf := float64(n)
	for _, v := range jack {
		u := (nf - 1) * (dot - v)
		num += u * u * u
		den += u * u
	}
	a := 1.0 / 6 * (num / (nf * nf * nf)) / math.Pow(den/(nf*nf), 1.5)
	za := normPPF(alpha)
	n1 := z0 + za
	n2 := z0 - za
	return normCDF(z0 + n1/(1-a*n1)), normCDF(z0 + n2/(1-a*n2))
}

// percentile is numpy.percentile(sorted, q) with linear interpolation.
func percentile(sorted []float64, q float64) float64 {
	q /= 100
	n := float64(len(sorted))
	h := n*q + (1 - q) - 1
	lo := math.Floor(h)
	if lo < 0 {
		return sorted[0]
	}
	i := int(lo)
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	t := h - lo
	a, b := sorted[i], sorted[i+1]
	if t >= 0.5 {
		return b - (b-a)*(1-t)
	}
	return a + (b-a)*t
}
