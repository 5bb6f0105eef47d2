//go:build goexperiment.simd && amd64

package analysis

import (
	"math"
	"math/rand/v2"
	"simd/archsimd"
	"testing"
)

// TestLog4MatchesMathLog checks the vector logarithm against math.Log bit for bit on
// random positive doubles over the whole exponent range (subnormals included), the
// interval (0, 2] the JS distance uses, and the √2/2 boundary of the reduction.
func TestLog4MatchesMathLog(t *testing.T) {
	if !haveVecLog {
		t.Skip("the CPU has no AVX2: log4 is never used")
	}
	r := rand.New(rand.NewPCG(7, 8))
	var xs []float64
	for k := 0; k < 400000; k++ {
		switch k % 4 {
		case 0:
			xs = append(xs, math.Float64frombits(r.Uint64()>>1)) // any positive bit pattern
		case 1:
			xs = append(xs, 2*r.Float64())
		case 2:
			xs = append(xs, math.Float64frombits(r.Uint64()&0x000FFFFFFFFFFFFF)) // subnormal
		default:
			xs = append(xs, math.Ldexp(r.Float64(), -r.IntN(60)))
		}
	}
	h := 7.07106781186547524401e-01
	for _, c := range []float64{h, math.Nextafter(h, 0), math.Nextafter(h, 1), 2 * h, 1, 2, 0.5, math.SmallestNonzeroFloat64, math.MaxFloat64} {
		xs = append(xs, c, c, c, c)
	}
	for len(xs)%4 != 0 {
		xs = append(xs, 1)
	}
	var got [4]float64
	for k := 0; k < len(xs); k += 4 {
		in := xs[k : k+4]
		if in[0] <= 0 || in[1] <= 0 || in[2] <= 0 || in[3] <= 0 || math.IsInf(in[0]+in[1]+in[2]+in[3], 0) || math.IsNaN(in[0]+in[1]+in[2]+in[3]) {
			continue
		}
		log4(archsimd.LoadFloat64x4Slice(in)).Store(&got)
		for l := 0; l < 4; l++ {
			if want := math.Log(in[l]); math.Float64bits(got[l]) != math.Float64bits(want) {
				t.Fatalf("log(%v) (bits %#x) = %v, math.Log %v", in[l], math.Float64bits(in[l]), got[l], want)
			}
		}
	}
}
