// Package stats holds the descriptive statistics and tests attnscope reports:
// means and variances, normal-approximation confidence intervals, the Student t
// distribution and Welch's two-sample t-test (as used by AttentionSpan's
// attention_evaluation/aggregation.py); Pearson, Spearman and Kendall τ-b
// correlations; Student, Welch, Mann–Whitney U and Wilcoxon signed-rank tests;
// exact and seeded permutation tests; percentile and BCa bootstrap intervals; Holm
// and Benjamini–Hochberg corrections. Each follows SciPy's defaults (two-sided,
// method "auto", Mann–Whitney continuity correction, Wilcoxon zero_method
// "wilcox" without correction) and is checked against SciPy in TestAgainstSciPy.
package stats

import (
	"errors"
	"math"

	"gonum.org/v1/gonum/mathext"
)

// Mean returns Σx/n, NaN for an empty slice. The sum is NumPy's pairwise
// summation, so the result equals numpy.mean bit for bit (tests such as the BCa
// bootstrap count values equal to the mean and are sensitive to the last bit).
func Mean(x []float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	return Sum(x) / float64(len(x))
}

// Sum returns Σx by NumPy's pairwise summation (numpy/core/src/umath/loops_utils.h
// pairwise_sum): below 8 values a plain loop, up to 128 eight interleaved partial
// sums, above that the two halves (split at a multiple of 8) summed recursively.
func Sum(x []float64) float64 {
	n := len(x)
	switch {
	case n < 8:
		s := 0.0
		for _, v := range x {
			s += v
		}
		return s
	case n <= 128:
		var r [8]float64
		copy(r[:], x[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range r {
				r[j] += x[i+j]
			}
		}
		s := (r[0] + r[1]) + (r[2] + r[3]) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			s += x[i]
		}
		return s
	}
	h := n / 2
	h -= h % 8
	return Sum(x[:h]) + Sum(x[h:])
}

// Variance returns the sample variance Σ(x−μ)²/(n−1), 0 when n ≤ 1 (the
// convention of AttentionSpan's statistics).
func Variance(x []float64) float64 {
	if len(x) <= 1 {
		return 0
	}
	m := Mean(x)
	s := 0.0
	for _, v := range x {
		s += (v - m) * (v - m)
	}
	return s / float64(len(x)-1)
}

// PopVariance returns the population variance Σ(x−μ)²/n (numpy.var), NaN for an
// empty slice.
func PopVariance(x []float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	m := Mean(x)
	s := 0.0
	for _, v := range x {
		s += (v - m) * (v - m)
	}
	return s / float64(len(x))
}

// CI95 returns the normal-approximation 95% interval μ ± 1.96·s/√n for a sample
// of size n with mean μ and sample variance s².
func CI95(mean, variance float64, n int) (lo, hi float64) {
	se := 0.0
	if n > 0 {
		se = math.Sqrt(variance) / math.Sqrt(float64(n))
	}
	return mean - 1.96*se, mean + 1.96*se
}

// StudentTCDF returns P(T ≤ t) for Student's t with df degrees of freedom,
// through the regularised incomplete beta function:
// for t ≥ 0, F(t) = 1 − ½·I_{df/(df+t²)}(df/2, ½) (scipy.stats.t.cdf).
func StudentTCDF(t, df float64) float64 {
	if math.IsNaN(t) || math.IsNaN(df) || df <= 0 {
		return math.NaN()
	}
	if math.IsInf(t, 1) {
		return 1
	}
	if math.IsInf(t, -1) {
		return 0
	}
	tail := 0.5 * mathext.RegIncBeta(df/2, 0.5, df/(df+t*t))
	if t >= 0 {
		return 1 - tail
	}
	return tail
}

// ErrTooFewValues is returned by WelchTTest when a group has fewer than two values.
var ErrTooFewValues = errors.New("each sequence must have at least two values to perform a t-test")

// Welch is the result of Welch's two-sample t-test. Defined is false when both
// groups have zero variance (t, df and p are then undefined).
type Welch struct {
	T, DF, P             float64
	Defined              bool
	Mean1, Mean2         float64
	Variance1, Variance2 float64 // sample variances (n−1)
	N1, N2               int
}

// WelchTTest compares the means of x and y without assuming equal variances:
// t = (μ₁−μ₂)/√(s₁²/n₁ + s₂²/n₂), Welch–Satterthwaite
// df = (s₁²/n₁ + s₂²/n₂)² / ((s₁²/n₁)²/(n₁−1) + (s₂²/n₂)²/(n₂−1)), two-sided
// p = 2·(1 − F_t(|t|; df)) (Welch 1947; scipy.stats.ttest_ind(equal_var=False)).
func WelchTTest(x, y []float64) (Welch, error) {
	w := Welch{N1: len(x), N2: len(y)}
	if len(x) < 2 || len(y) < 2 {
		return w, ErrTooFewValues
	}
	w.Mean1, w.Mean2 = Mean(x), Mean(y)
	w.Variance1, w.Variance2 = Variance(x), Variance(y)
	return welchFrom(w), nil
}

// WelchFromMoments runs the test from summary statistics.
func WelchFromMoments(mean1, var1 float64, n1 int, mean2, var2 float64, n2 int) (Welch, error) {
	w := Welch{Mean1: mean1, Mean2: mean2, Variance1: var1, Variance2: var2, N1: n1, N2: n2}
	if n1 < 2 || n2 < 2 {
		return w, ErrTooFewValues
	}
	return welchFrom(w), nil
}

func welchFrom(w Welch) Welch {
	if w.Variance1 == 0 && w.Variance2 == 0 {
		return w
	}
	a, b := w.Variance1/float64(w.N1), w.Variance2/float64(w.N2)
	w.T = (w.Mean1 - w.Mean2) / math.Sqrt(a+b)
	w.DF = (a + b) * (a + b) / (a*a/float64(w.N1-1) + b*b/float64(w.N2-1))
	w.P = 2 * (1 - StudentTCDF(math.Abs(w.T), w.DF))
	w.Defined = true
	return w
}
