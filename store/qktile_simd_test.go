//go:build goexperiment.simd && amd64

package store

import (
	"math"
	"math/rand/v2"
	"testing"

	"simd/archsimd"
)

// TestExp8: exp8 is within 2 ulp of math.Exp on a million random arguments in
// [−745, 1] (the range of s/√d − lse plus rounding), at 0, at the edges of the
// float64 range and where the result is subnormal or 0.
func TestExp8(t *testing.T) {
	if !have512 {
		t.Skip("the CPU lacks AVX-512: tiles use the portable kernel")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	xs := []float64{0, -1e-300, 1e-17, -0.5, 0.5, -0.34657359, 0.34657359, 1, -700, -708.5, -720, -744, -745.2, -746, -1000, -1e6}
	for range 1 << 20 {
		switch rng.IntN(3) {
		case 0:
			xs = append(xs, -rng.Float64()*745)
		case 1:
			xs = append(xs, -rng.Float64()*20)
		default:
			xs = append(xs, rng.Float64()*2-1)
		}
	}
	for len(xs)%8 != 0 {
		xs = append(xs, 0)
	}
	worst := 0.0
	for k := 0; k < len(xs); k += 8 {
		var got [8]float64
		exp8(archsimd.LoadFloat64x8(xs[k : k+8])).StoreArray(&got)
		for l, g := range got {
			want := math.Exp(xs[k+l])
			ulp := math.Abs(math.Nextafter(want, math.Inf(1)) - want)
			if want == 0 {
				ulp = math.SmallestNonzeroFloat64
			}
			if d := math.Abs(g-want) / ulp; d > 2 || math.IsNaN(g) {
				t.Fatalf("exp8(%.17g) = %.17g, math.Exp %.17g (%.3g ulp)", xs[k+l], g, want, d)
			} else {
				worst = max(worst, d)
			}
		}
	}
	t.Logf("largest difference from math.Exp: %.3g ulp over %d arguments", worst, len(xs))
}
