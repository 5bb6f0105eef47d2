package stats

import (
	"math"
	"slices"
	"testing"
)

// Hand-checkable values that hold without the SciPy oracle.
func TestRankAndCorrelationsByHand(t *testing.T) {
	if got := Rank([]float64{10, 20, 10, 5}); !slices.Equal(got, []float64{2.5, 4, 2.5, 1}) {
		t.Fatalf("ranks %v", got)
	}
	// followup-attention oracle: Spearman of [1,2,3,4] and [1,3,2,4] is ρ = 0.8, p = 0.2.
	r, err := Spearman([]float64{1, 2, 3, 4}, []float64{1, 3, 2, 4})
	if err != nil || !near(r.Statistic, 0.8, 1e-12) || !near(r.P, 0.2, 1e-12) {
		t.Fatalf("spearman %+v %v", r, err)
	}
	// Kendall: 5 concordant, 1 discordant of 6 pairs: τ = 4/6; exact p: the
	// permutations with at most one inversion, 2·(1+3)/4! = 1/3.
	r, _ = KendallTauB([]float64{1, 2, 3, 4}, []float64{1, 3, 2, 4})
	if !near(r.Statistic, 2.0/3, 1e-12) || !near(r.P, 1.0/3, 1e-12) || r.Method != "exact" {
		t.Fatalf("kendall %+v", r)
	}
	if r, _ := Pearson([]float64{1, 2, 3}, []float64{2, 4, 6}); !near(r.Statistic, 1, 1e-15) || r.P > 1e-7 {
		t.Fatalf("pearson of a line %+v", r)
	}
	if r, _ := Pearson([]float64{1, 1, 1}, []float64{2, 4, 6}); !math.IsNaN(r.Statistic) {
		t.Fatalf("constant input %+v", r)
	}
	if _, err := Pearson([]float64{1, 2}, []float64{1}); err == nil {
		t.Fatal("lengths differ: no error")
	}
}

func TestCorrectionsByHand(t *testing.T) {
	p := []float64{0.01, 0.04, 0.03, 0.2}
	h, _ := Holm(p) // sorted 0.01·4, 0.03·3, 0.04·2, 0.2·1 → running max
	if want := []float64{0.04, 0.09, 0.09, 0.2}; !slicesNear(h, want) {
		t.Fatalf("holm %v want %v", h, want)
	}
	b, _ := BenjaminiHochberg(p) // sorted 0.01·4/1, 0.03·4/2, 0.04·4/3, 0.2·4/4 → running min from the top
	if want := []float64{0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.2}; !slicesNear(b, want) {
		t.Fatalf("bh %v want %v", b, want)
	}
	if _, err := Holm([]float64{0.5, 1.5}); err == nil {
		t.Fatal("p-value 1.5 accepted")
	}
}

func slicesNear(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !near(a[i], b[i], 1e-12) {
			return false
		}
	}
	return true
}

// An exact permutation test of two fully separated groups of 3: the observed
// split is the most extreme of C(6,3) = 20, on both sides: p = 2·1/20.
func TestPermutationExactByHand(t *testing.T) {
	r, err := PermutationTest([]float64{1, 2, 3}, []float64{10, 11, 12}, PermutationOptions{})
	if err != nil || r.Method != "exact" || !near(r.P, 0.1, 1e-15) || r.Statistic != -9 {
		t.Fatalf("%+v %v", r, err)
	}
	// Randomized with a seed: reproducible, and close to the exact p-value.
	x := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	y := []float64{3, 5, 7, 9, 11, 13, 15, 17, 19, 21}
	ex, _ := PermutationTest(x, y, PermutationOptions{Resamples: 200000})
	r1, _ := PermutationTest(x, y, PermutationOptions{Resamples: 4000, Seed: 7})
	r2, _ := PermutationTest(x, y, PermutationOptions{Resamples: 4000, Seed: 7})
	if ex.Method != "exact" || r1.Method != "randomized" || r1.P != r2.P || math.Abs(r1.P-ex.P) > 0.02 {
		t.Fatalf("exact %+v randomized %+v %+v", ex, r1, r2)
	}
}

func TestBootstrapCoversTheMean(t *testing.T) {
	x := []float64{2.1, 3.4, 1.9, 5.6, 4.4, 3.3, 2.8, 3.9, 4.1, 3.0}
	for _, m := range []BootstrapMethod{Percentile, BCa} {
		iv, err := Bootstrap(x, Mean, BootstrapOptions{Resamples: 2000, Seed: 1, Method: m})
		if err != nil || !(iv.Low < Mean(x) && Mean(x) < iv.High) || len(iv.Distribution) != 2000 {
			t.Fatalf("method %d: %v %v %v", m, iv.Low, iv.High, err)
		}
	}
}

func TestSumIsNumpyPairwise(t *testing.T) {
	// 0.1 summed 10 times: a plain loop gives 0.9999999999999999, NumPy's eight
	// partial sums give 1.0000000000000002... check against the explicit formula.
	x := make([]float64, 10)
	for i := range x {
		x[i] = 0.1
	}
	r := [8]float64{0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1}
	want := (r[0] + r[1]) + (r[2] + r[3]) + ((r[4] + r[5]) + (r[6] + r[7])) + 0.1 + 0.1
	if Sum(x) != want {
		t.Fatalf("sum %v want %v", Sum(x), want)
	}
}
