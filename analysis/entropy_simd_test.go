//go:build goexperiment.simd && amd64

package analysis

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestRowEntropyVecMatchesScalar: under each convention, RowEntropy's vector path
// equals the scalar loop bit for bit on rows of random lengths with zero runs (a
// causal row's masked tail), tiny and subnormal weights, and a NaN.
func TestRowEntropyVecMatchesScalar(t *testing.T) {
	if !have512 {
		t.Skip("the CPU lacks AVX-512: RowEntropy runs the scalar loop")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 2000 {
		n := 1 + rng.IntN(300)
		row := make([]float64, n)
		for j := range row {
			switch rng.IntN(6) {
			case 0:
				row[j] = 0
			case 1:
				row[j] = rng.Float64() * 1e-300 * 1e-10
			default:
				row[j] = rng.Float64()
			}
		}
		if trial%3 == 0 {
			clear(row[rng.IntN(n):])
		}
		if trial == 7 {
			row[n/2] = math.NaN()
		}
		for _, c := range []EntropyConvention{EntropyExact, EntropyAnalyzer, EntropyShifted} {
			got, ok := RowEntropy(row, c)
			var div, add float64
			raw := false
			switch c {
			case EntropyExact:
				for _, v := range row {
					div += v
				}
				if div <= 0 {
					if ok {
						t.Fatalf("an all-zero row counts")
					}
					continue
				}
			case EntropyAnalyzer:
				add, raw = 1e-8, true
			default:
				add = 1e-10
			}
			want := 0.0
			for _, v := range row {
				want = entropyTerm(want, v, div, add, raw)
			}
			if math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
				t.Fatalf("trial %d %s (n %d): vector %.17g, scalar %.17g", trial, c, n, got, want)
			}
		}
	}
}
