package stats

import (
	"errors"
	"fmt"
	"math"
	"math/big"

	"gonum.org/v1/gonum/mathext"
)

// Result is the outcome of a correlation or a hypothesis test: its statistic and
// the two-sided p-value. All tests in this package are two-sided (SciPy's default
// alternative="two-sided").
type Result struct {
	Statistic float64
	P         float64
	// DF is the degrees of freedom of t-based tests, 0 otherwise.
	DF float64
	// Method is "exact" or "asymptotic" for tests that have both, "" otherwise.
	Method string
}

// ErrLengths is returned (wrapped) when paired samples differ in length.
var ErrLengths = errors.New("the samples differ in length")

func pairedLengths(x, y []float64, min int) error {
	if len(x) != len(y) {
		return fmt.Errorf("%w: %d and %d values", ErrLengths, len(x), len(y))
	}
	if len(x) < min {
		return fmt.Errorf("at least %d paired values needed, got %d", min, len(x))
	}
	return nil
}

// Pearson returns Pearson's correlation r = Σ(x−x̄)(y−ȳ)/(‖x−x̄‖‖y−ȳ‖) and the
// two-sided p-value from the exact null distribution of r for normal data,
// r ~ 2·Beta(n/2−1, n/2−1) − 1, so p = 2·I_{(1−|r|)/2}(n/2−1, n/2−1)
// (scipy.stats.pearsonr). A constant input gives NaN for both; n = 2 gives
// r = ±1 and p = 1.
func Pearson(x, y []float64) (Result, error) {
	if err := pairedLengths(x, y, 2); err != nil {
		return Result{}, fmt.Errorf("pearson: %w", err)
	}
	n := len(x)
	if constant(x) || constant(y) {
		return Result{Statistic: math.NaN(), P: math.NaN()}, nil
	}
	if n == 2 {
		return Result{Statistic: sign(x[1]-x[0]) * sign(y[1]-y[0]), P: 1}, nil
	}
	mx, my := Mean(x), Mean(y)
	var sxx, syy float64
	for i := range x {
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	nx, ny := math.Sqrt(sxx), math.Sqrt(syy)
	var r float64
	for i := range x {
		r += (x[i] - mx) / nx * ((y[i] - my) / ny)
	}
	r = math.Max(-1, math.Min(1, r))
	ab := float64(n)/2 - 1
	p := 2 * mathext.RegIncBeta(ab, ab, (1-math.Abs(r))/2)
	return Result{Statistic: r, P: clip01(p)}, nil
}

func sign(v float64) float64 {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// Spearman returns Spearman's rank correlation ρ, Pearson's r of the average
// ranks (ties share the mean of their ranks), and the two-sided p-value of
// t = ρ·√((n−2)/((1+ρ)(1−ρ))) under Student's t with n−2 degrees of freedom
// (scipy.stats.spearmanr). A constant input gives NaN; n = 2 gives a NaN p-value.
func Spearman(x, y []float64) (Result, error) {
	if err := pairedLengths(x, y, 2); err != nil {
		return Result{}, fmt.Errorf("spearman: %w", err)
	}
	if constant(x) || constant(y) {
		return Result{Statistic: math.NaN(), P: math.NaN()}, nil
	}
	rx, ry := Rank(x), Rank(y)
	mx, my := Mean(rx), Mean(ry)
	var sxy, sxx, syy float64
	for i := range rx {
		dx, dy := rx[i]-mx, ry[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	rho := math.Max(-1, math.Min(1, sxy/math.Sqrt(sxx*syy)))
	df := float64(len(x) - 2)
	res := Result{Statistic: rho, DF: df}
	if df == 0 {
		res.P = math.NaN()
		return res, nil
	}
	t := rho * math.Sqrt(math.Max(0, df/((rho+1)*(1-rho))))
	res.P = studentTwoSided(t, df)
	return res, nil
}

// studentTwoSided is 2·P(T > |t|) for Student's t with df degrees of freedom,
// I_{df/(df+t²)}(df/2, ½).
func studentTwoSided(t, df float64) float64 {
	if math.IsNaN(t) {
		return math.NaN()
	}
	if math.IsInf(t, 0) {
		return 0
	}
	return clip01(mathext.RegIncBeta(df/2, 0.5, df/(df+t*t)))
}

// KendallTauB returns Kendall's τ-b = (C − D)/√((n₀−n₁)(n₀−n₂)), with C and D the
// concordant and discordant pairs, n₀ = n(n−1)/2 and n₁, n₂ the pairs tied in x and
// in y (Kendall 1945), and its two-sided p-value (scipy.stats.kendalltau,
// method="auto"): exact (Kendall's recurrence for the number of permutations with a
// given number of inversions) when there are no ties and n ≤ 33 or min(D, n₀−D) ≤ 1,
// otherwise the normal approximation with the tie-corrected variance
// var = (v₀ − v_x − v_y)/18 + 2·n₁n₂/(n(n−1)) + t_x·t_y/(9n(n−1)(n−2)).
// A constant input gives NaN.
func KendallTauB(x, y []float64) (Result, error) {
	if err := pairedLengths(x, y, 0); err != nil {
		return Result{}, fmt.Errorf("kendall tau: %w", err)
	}
	n := len(x)
	nan := Result{Statistic: math.NaN(), P: math.NaN()}
	if n == 0 {
		return nan, nil
	}
	var dis, xtie, ytie, ntie int64
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			dx, dy := sign(x[i]-x[j]), sign(y[i]-y[j])
			switch {
			case dx == 0 && dy == 0:
				ntie++
				xtie++
				ytie++
			case dx == 0:
				xtie++
			case dy == 0:
				ytie++
			case dx*dy < 0:
				dis++
			}
		}
	}
	tot := int64(n) * int64(n-1) / 2
	if xtie == tot || ytie == tot {
		return nan, nil
	}
	cmd := float64(tot - xtie - ytie + ntie - 2*dis)
	tau := cmd / math.Sqrt(float64(tot-xtie)) / math.Sqrt(float64(tot-ytie))
	tau = math.Max(-1, math.Min(1, tau))
	if xtie == 0 && ytie == 0 && (n <= 33 || min(dis, tot-dis) <= 1) {
		return Result{Statistic: tau, P: kendallExactP(n, tot-dis), Method: "exact"}, nil
	}
	x0, x1 := tieMoments(x)
	y0, y1 := tieMoments(y)
	nf := float64(n)
	m := nf * (nf - 1)
	v := (m*(2*nf+5)-x1-y1)/18 + 2*float64(xtie)*float64(ytie)/m + x0*y0/(9*m*(nf-2))
	z := cmd / math.Sqrt(v)
	return Result{Statistic: tau, P: 2 * normSF(math.Abs(z)), Method: "asymptotic"}, nil
}

// tieMoments returns Σt(t−1)(t−2) and Σt(t−1)(2t+5) over the tie groups of x.
func tieMoments(x []float64) (t0, t1 float64) {
	for _, c := range tieCounts(x) {
		t := float64(c)
		t0 += t * (t - 1) * (t - 2)
		t1 += t * (t - 1) * (2*t + 5)
	}
	return t0, t1
}

// kendallExactP is the two-sided exact p-value of c concordant pairs among n
// untied values (scipy.stats._mstats_basic._kendall_p_exact).
func kendallExactP(n int, c int64) float64 {
	tot := int64(n) * int64(n-1) / 2
	c = min(c, tot-c)
	var p float64
	switch {
	case n <= 2:
		p = 1
	case c == 0:
		p = 2 / factorial(n)
	case c == 1:
		p = 2 / factorial(n-1)
	case 4*c == int64(n)*int64(n-1):
		p = 1
	default:
		// new[k] = number of permutations of j values with k inversions, k ≤ c.
		cur := make([]float64, c+1)
		cur[0], cur[1] = 1, 1
		for j := 3; j <= n; j++ {
			for k := 1; k <= int(c); k++ {
				cur[k] += cur[k-1]
			}
			if int64(j) <= c {
				for k := int(c); k >= j; k-- {
					cur[k] -= cur[k-j]
				}
			}
		}
		var s float64
		for _, v := range cur {
			s += v
		}
		if n < 171 {
			p = 2 * s / factorial(n)
		} else {
			p = 0 // n! overflows; the tail mass is below 2^-1000
		}
	}
	return clip01(p)
}

// factorial returns n! rounded to the nearest float64 (as Python divides by an int).
func factorial(n int) float64 {
	f := new(big.Int).MulRange(1, int64(max(n, 1)))
	v, _ := new(big.Float).SetInt(f).Float64()
	return v
}
