package stats

import (
	"fmt"
	"math"
)

// StudentTTest compares the means of two independent samples assuming equal
// variances: pooled s² = ((n₁−1)s₁² + (n₂−1)s₂²)/(n₁+n₂−2),
// t = (x̄−ȳ)/√(s²(1/n₁+1/n₂)), df = n₁+n₂−2, two-sided p
// (scipy.stats.ttest_ind, equal_var=True). Both samples constant gives NaN.
func StudentTTest(x, y []float64) (Result, error) {
	if len(x) < 2 || len(y) < 2 {
		return Result{}, ErrTooFewValues
	}
	n1, n2 := float64(len(x)), float64(len(y))
	df := n1 + n2 - 2
	sp := ((n1-1)*Variance(x) + (n2-1)*Variance(y)) / df
	t := (Mean(x) - Mean(y)) / math.Sqrt(sp*(1/n1+1/n2))
	return Result{Statistic: t, P: studentTwoSided(t, df), DF: df}, nil
}

// WelchT is Welch's test as a Result (statistic t, Welch–Satterthwaite df,
// two-sided p; scipy.stats.ttest_ind, equal_var=False). Both samples constant
// gives NaN.
func WelchT(x, y []float64) (Result, error) {
	w, err := WelchTTest(x, y)
	if err != nil {
		return Result{}, err
	}
	if !w.Defined {
		return Result{Statistic: math.NaN(), P: math.NaN(), DF: math.NaN()}, nil
	}
	return Result{Statistic: w.T, P: studentTwoSided(w.T, w.DF), DF: w.DF}, nil
}

// MannWhitneyU returns U₁ = R₁ − n₁(n₁+1)/2, the Mann–Whitney statistic of x (R₁ the
// sum of x's average ranks in the pooled sample), and the two-sided p-value
// (scipy.stats.mannwhitneyu with its defaults use_continuity=True,
// method="auto"): exact (Mann & Whitney 1947 recurrence for the number of
// arrangements with a given U) when a sample has at most 8 values and no value is
// tied, otherwise the normal approximation with tie correction
// σ = √(n₁n₂/12·((n+1) − Σ(t³−t)/(n(n−1)))) and continuity correction ½:
// p = 2·(1 − Φ((max(U₁,U₂) − n₁n₂/2 − ½)/σ)), capped at 1.
func MannWhitneyU(x, y []float64) (Result, error) {
	if len(x) == 0 || len(y) == 0 {
		return Result{}, fmt.Errorf("mann-whitney U: both samples must be non-empty (got %d and %d values)", len(x), len(y))
	}
	n1, n2 := len(x), len(y)
	xy := append(append(make([]float64, 0, n1+n2), x...), y...)
	ranks := Rank(xy)
	var r1 float64
	for _, r := range ranks[:n1] {
		r1 += r
	}
	u1 := r1 - float64(n1*(n1+1))/2
	u2 := float64(n1*n2) - u1
	u := math.Max(u1, u2)
	ties := tieCounts(xy)
	if (n1 <= 8 || n2 <= 8) && len(ties) == 0 {
		return Result{Statistic: u1, P: clip01(2 * mwuSF(int(u), n1, n2)), Method: "exact"}, nil
	}
	n := float64(n1 + n2)
	var tie float64
	for _, t := range ties {
		tf := float64(t)
		tie += tf*tf*tf - tf
	}
	s := math.Sqrt(float64(n1*n2) / 12 * ((n + 1) - tie/(n*(n-1))))
	z := (u - float64(n1*n2)/2 - 0.5) / s
	return Result{Statistic: u1, P: clip01(2 * normSF(z)), Method: "asymptotic"}, nil
}

// mwuSF returns P(U ≥ u) for samples of sizes m and n without ties: by symmetry
// P(U ≤ mn − u), from the number of arrangements with U = k,
// f(m, n, k) = f(m−1, n, k−n) + f(m, n−1, k), f(·, ·, 0) = 1 (Mann & Whitney 1947),
// divided by C(m+n, m).
func mwuSF(u, m, n int) float64 {
	if n > m {
		m, n = n, m // f is symmetric in m and n; keep the tables small
	}
	k := m*n - u
	if k < 0 {
		return 0
	}
	prev := make([][]float64, n+1) // f(i−1, j, ·)
	cur := make([][]float64, n+1)  // f(i, j, ·)
	for j := range prev {
		prev[j] = make([]float64, k+1)
		cur[j] = make([]float64, k+1)
	}
	for i := 0; i <= m; i++ {
		for j := 0; j <= n; j++ {
			for kk := 0; kk <= k; kk++ {
				var v float64
				switch {
				case kk > i*j:
				case kk == 0:
					v = 1
				default:
					if i > 0 && kk >= j {
						v += prev[j][kk-j]
					}
					if j > 0 {
						v += cur[j-1][kk]
					}
				}
				cur[j][kk] = v
			}
		}
		prev, cur = cur, prev
	}
	var s float64
	for _, v := range prev[n] {
		s += v
	}
	return s / binom(m+n, n)
}

// binom returns C(n, k) by the product formula.
func binom(n, k int) float64 {
	k = min(k, n-k)
	c := 1.0
	for i := 1; i <= k; i++ {
		c = c * float64(n-k+i) / float64(i)
	}
	return c
}

// Wilcoxon is the Wilcoxon signed-rank test of the paired differences d = x − y
// (scipy.stats.wilcoxon with its defaults zero_method="wilcox", correction=False,
// two-sided). Zero differences are dropped; the statistic is T = min(R⁺, R⁻) of the
// average ranks of |d|. The p-value is exact (the distribution of R⁺ over the 2ⁿ
// sign assignments) when n ≤ 50 and no difference is zero or tied — SciPy ≥ 1.13's
// rule for method="auto" (SciPy 1.10 also took the exact path with ties, truncating
// R⁺ to an integer) — otherwise the normal approximation with tie correction
// z = (T − n(n+1)/4)/√((n(n+1)(2n+1) − ½Σt(t²−1))/24), p = 2·(1 − Φ(|z|)).
func Wilcoxon(x, y []float64) (Result, error) {
	if err := pairedLengths(x, y, 1); err != nil {
		return Result{}, fmt.Errorf("wilcoxon: %w", err)
	}
	var d []float64
	zeros := 0
	for i := range x {
		if v := x[i] - y[i]; v != 0 {
			d = append(d, v)
		} else {
			zeros++
		}
	}
	if len(d) == 0 {
		return Result{}, fmt.Errorf("wilcoxon: every difference is zero")
	}
	abs := make([]float64, len(d))
	for i, v := range d {
		abs[i] = math.Abs(v)
	}
	r := Rank(abs)
	var rp, rm float64
	for i, v := range d {
		if v > 0 {
			rp += r[i]
		} else {
			rm += r[i]
		}
	}
	t := math.Min(rp, rm)
	n := len(d)
	ties := tieCounts(abs)
	if len(x) <= 50 && zeros == 0 && len(ties) == 0 {
		return Result{Statistic: t, P: wilcoxonExactP(n, int(rp)), Method: "exact"}, nil
	}
	nf := float64(n)
	mn := nf * (nf + 1) / 4
	se := nf * (nf + 1) * (2*nf + 1)
	for _, c := range ties {
		cf := float64(c)
		se -= 0.5 * cf * (cf*cf - 1)
	}
	z := (t - mn) / math.Sqrt(se/24)
	return Result{Statistic: t, P: 2 * normSF(math.Abs(z)), Method: "asymptotic"}, nil
}

// wilcoxonExactP is the two-sided exact p-value of R⁺ = rp among n untied
// differences: 2·min(P(R⁺ ≤ rp), P(R⁺ ≥ rp)), 1 at the centre.
func wilcoxonExactP(n, rp int) float64 {
	c := []float64{1}
	for k := 1; k <= n; k++ {
		next := make([]float64, k*(k+1)/2+1)
		m := len(c)
		for i, v := range c {
			next[i] += v * 0.5
			next[len(next)-m+i] += v * 0.5
		}
		c = next
	}
	if rp == (len(c)-1)/2 {
		return 1
	}
	var less, greater float64
	for i, v := range c {
		if i <= rp {
			less += v
		}
		if i >= rp {
			greater += v
		}
	}
	return clip01(2 * math.Min(less, greater))
}
