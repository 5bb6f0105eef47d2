package stats

import (
	"errors"
	"math"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestDescriptive(t *testing.T) {
	x := []float64{0.1, 0.2, 0.3}
	if !near(Mean(x), 0.2, 1e-12) || !near(Variance(x), 0.01, 1e-12) || !near(PopVariance(x), 0.02/3, 1e-12) {
		t.Fatalf("mean %v var %v popvar %v", Mean(x), Variance(x), PopVariance(x))
	}
	if Variance([]float64{5}) != 0 || !math.IsNaN(Mean(nil)) {
		t.Fatal("edge cases")
	}
	// Oracle 25's CI: mean 0.58625, variance 0.342378 over n = 2.
	lo, hi := CI95(0.58625, Variance([]float64{1, 0.1725}), 2)
	if !near(lo, -0.224700, 1e-6) || !near(hi, 1.397200, 1e-6) {
		t.Fatalf("CI [%v, %v]", lo, hi)
	}
}

// Closed forms: df = 1 is Cauchy, F = ½ + atan(t)/π; df = 2 has
// F = ½ + t/(2√(t²+2)); df = 2.876404 is oracle 26's p-value.
func TestStudentTCDF(t *testing.T) {
	for _, tc := range []struct{ t, df, want float64 }{
		{0, 3, 0.5},
		{1, 1, 0.75},
		{-3, 1, 0.5 + math.Atan(-3)/math.Pi},
		{2, 2, 0.5 + 2/(2*math.Sqrt(6))},
		{-0.7, 2, 0.5 - 0.7/(2*math.Sqrt(0.49+2))},
		{3.5, 2.876404, 1 - 0.042172/2},
	} {
		if got := StudentTCDF(tc.t, tc.df); !near(got, tc.want, 1e-6) {
			t.Errorf("F(%v; %v) = %v, want %v", tc.t, tc.df, got, tc.want)
		}
	}
}

// Oracle 26.
func TestWelchOracle(t *testing.T) {
	w, err := WelchTTest([]float64{0.1, 0.2, 0.3}, []float64{0.5, 0.6, 0.9})
	if err != nil {
		t.Fatal(err)
	}
	if !w.Defined || !near(w.T, -3.5, 1e-6) || !near(w.DF, 2.876404, 1e-6) || !near(w.P, 0.042172, 1e-6) {
		t.Fatalf("t %v df %v p %v", w.T, w.DF, w.P)
	}
	if !near(w.Variance2, 0.043333, 1e-6) || !near(w.Mean2, 0.666667, 1e-6) {
		t.Fatalf("group 2: %v %v", w.Mean2, w.Variance2)
	}
	w, err = WelchTTest([]float64{1, 1}, []float64{2, 2, 2})
	if err != nil || w.Defined {
		t.Fatalf("zero variances: %+v %v", w, err)
	}
	if _, err := WelchTTest([]float64{1}, []float64{2, 3}); !errors.Is(err, ErrTooFewValues) {
		t.Fatalf("one value: %v", err)
	}
}
