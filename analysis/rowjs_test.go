package analysis

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// TestRowPairsJSMatchesScalar checks that the row-pair JS sum (vectorised with
// GOEXPERIMENT=simd on AVX2 CPUs) equals the plain JSDistance loop bit for bit, on
// causal and full attention with rows of zero mass, tiny weights and odd sizes.
func TestRowPairsJSMatchesScalar(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, N := range []int{1, 2, 3, 5, 8, 13, 40, 97} {
		for _, causal := range []bool{true, false} {
			m := randomAttention(uint64(N), 1, 1, N, causal).Data
			if N > 4 {
				for j := 0; j < N; j++ { // a row without mass
					m[2*N+j] = 0
				}
				m[3*N] *= 1e-300 // tiny and subnormal weights
				m[3*N+1] = 5e-324
				m[4*N+N/2] = 0
				m[N*N-1] = r.Float64() * 1e-12
			}
			gotJS, gotPairs := rowPairsJS(context.Background(), m, N)
			wantJS, wantPairs := rowPairsJSScalar(context.Background(), m, N)
			if math.Float64bits(gotJS) != math.Float64bits(wantJS) || gotPairs != wantPairs {
				t.Fatalf("N=%d causal=%v: %v over %d pairs, scalar %v over %d", N, causal, gotJS, gotPairs, wantJS, wantPairs)
			}
		}
	}
}
