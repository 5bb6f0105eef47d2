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
		log4(archsimd.LoadFloat64x4(in)).StoreArray(&got)
		for l := 0; l < 4; l++ {
			if want := math.Log(in[l]); math.Float64bits(got[l]) != math.Float64bits(want) {
				t.Fatalf("log(%v) (bits %#x) = %v, math.Log %v", in[l], math.Float64bits(in[l]), got[l], want)
			}
		}
	}
}

// TestLanesMatchScalar runs the four- and (where the CPU has AVX-512) eight-lane row
// comparisons against the scalar loop, bit for bit.
func TestLanesMatchScalar(t *testing.T) {
	if !haveVecLog {
		t.Skip("the CPU has no AVX2: the vector kernels are never used")
	}
	lanes := []int{4}
	if have512 {
		lanes = append(lanes, 8)
	} else {
		t.Log("no AVX-512 here: the eight-lane kernel is not tested")
	}
	for _, N := range []int{2, 7, 9, 17, 64} {
		for _, causal := range []bool{true, false} {
			m := randomAttention(uint64(N)+50, 1, 1, N, causal).Data
			m[N*N-1] *= 1e-310 // a subnormal weight
			wantJS, wantPairs := rowPairsJSScalar(t.Context(), m, N)
			for _, l := range lanes {
				gotJS, gotPairs, _ := rowPairsJSLanes(t.Context(), m, N, l)
				if math.Float64bits(gotJS) != math.Float64bits(wantJS) || gotPairs != wantPairs {
					t.Fatalf("N=%d causal=%v lanes=%d: %v over %d pairs, scalar %v over %d", N, causal, l, gotJS, gotPairs, wantJS, wantPairs)
				}
			}
		}
	}
}

// TestLog8MatchesMathLog checks the eight-lane logarithm against math.Log bit for bit.
func TestLog8MatchesMathLog(t *testing.T) {
	if !have512 {
		t.Skip("the CPU has no AVX-512: log8 is never used")
	}
	r := rand.New(rand.NewPCG(9, 10))
	var in, got [8]float64
	for k := 0; k < 100000; k++ {
		for l := range in {
			switch (k + l) % 3 {
			case 0:
				in[l] = 2 * r.Float64()
			case 1:
				in[l] = math.Float64frombits(r.Uint64() & 0x000FFFFFFFFFFFFF)
			default:
				in[l] = math.Float64frombits(r.Uint64() >> 2)
			}
			if in[l] == 0 {
				in[l] = 1
			}
		}
		log8(archsimd.LoadFloat64x8Array(&in)).StoreArray(&got)
		for l := range in {
			if want := math.Log(in[l]); math.Float64bits(got[l]) != math.Float64bits(want) {
				t.Fatalf("log(%v) = %v, math.Log %v", in[l], got[l], want)
			}
		}
	}
}
