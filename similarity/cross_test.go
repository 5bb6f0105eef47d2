package similarity

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// crossProduct (the AVX-512 kernel where the CPU has it) equals gonum's AᵀB on
// shapes that fill tiles exactly, leave edges, and span several k-blocks.
func TestCrossProductMatchesGonum(t *testing.T) {
	if !have512 {
		t.Log("no AVX-512 kernel on this CPU or build: crossProduct is gonum's product")
	}
	rng := rand.New(rand.NewPCG(4, 16))
	for _, sh := range [][3]int{{1, 4, 16}, {300, 8, 32}, {257, 13, 35}, {129, 5, 17}, {40, 3, 50}, {10, 20, 10}, {500, 64, 48}} {
		n, da, db := sh[0], sh[1], sh[2]
		a := mat.NewDense(n, da, nil)
		b := mat.NewDense(n, db, nil)
		for i := range n {
			for j := range da {
				a.Set(i, j, rng.NormFloat64()+3)
			}
			for j := range db {
				b.Set(i, j, rng.NormFloat64())
			}
		}
		var want mat.Dense
		want.Mul(a.T(), b)
		got := crossProduct(a, b)
		for i := range da {
			for j := range db {
				w := want.At(i, j)
				if d := math.Abs(got[i*db+j] - w); d > 1e-12*(1+math.Abs(w))*math.Sqrt(float64(n)) {
					t.Fatalf("%v: P[%d,%d] = %v, gonum %v", sh, i, j, got[i*db+j], w)
				}
			}
		}
	}
}
