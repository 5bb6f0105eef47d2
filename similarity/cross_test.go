package similarity

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// crossProduct (the AVX-512 kernel where the CPU has it) equals gonum's AᵀB on
// shapes that fill tiles exactly, leave edges, span several k-blocks and several
// packed blocks of A per worker.
func TestCrossProductMatchesGonum(t *testing.T) {
	if !have512 {
		t.Log("no AVX-512 kernel on this CPU or build: crossProduct is gonum's product")
	}
	rng := rand.New(rand.NewPCG(4, 16))
	for _, sh := range [][3]int{{1, 4, 16}, {300, 8, 32}, {257, 13, 35}, {129, 5, 17}, {40, 3, 50}, {10, 20, 10}, {500, 64, 48}, {450, 203, 77}, {200, 8, 24}, {7, 1, 1}} {
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

// crossProduct sums every element in the same order whatever GOMAXPROCS is: the
// result is bit-identical with 1 and 3 workers.
func TestCrossProductIndependentOfWorkers(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 17))
	n, da, db := 401, 203, 77
	a, b := mat.NewDense(n, da, nil), mat.NewDense(n, db, nil)
	for _, m := range []*mat.Dense{a, b} {
		d := m.RawMatrix().Data
		for i := range d {
			d[i] = rng.NormFloat64()
		}
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	one := crossProduct(a, b)
	runtime.GOMAXPROCS(3)
	three := crossProduct(a, b)
	for i := range one {
		if one[i] != three[i] {
			t.Fatalf("P[%d] = %v with one worker, %v with three", i, one[i], three[i])
		}
	}
}
