package similarity

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/mat"
)

// crossBlock is the number of rows (tokens) of A and B a kernel pass accumulates, so
// that the block of B stays in the L2 cache while every tile of P sweeps it.
const crossBlock = 128

// crossProduct returns P = AᵀB (d_a×d_b, row-major) for A (n×d_a) and B (n×d_b):
// through the AVX-512 kernel where the CPU has it (tiles of 4×16, k-blocked, rows of P
// split across GOMAXPROCS goroutines; the edges that do not fill a tile in plain
// loops), otherwise through gonum's Dgemm.
func crossProduct(A, B *mat.Dense) []float64 {
	n, da := A.Dims()
	_, db := B.Dims()
	if !have512 || da < 4 || db < 16 {
		var m mat.Dense
		m.Mul(A.T(), B)
		return mat.DenseCopyOf(&m).RawMatrix().Data
	}
	ra, rb := A.RawMatrix(), B.RawMatrix()
	a, sa, b, sb := ra.Data, ra.Stride, rb.Data, rb.Stride
	p := make([]float64, da*db)
	iEnd, jEnd := da/4*4, db/16*16
	workers := min(runtime.GOMAXPROCS(0), iEnd/4)
	var wg sync.WaitGroup
	for w := range workers {
		i0, i1 := (iEnd/4*w/workers)*4, (iEnd/4*(w+1)/workers)*4
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k0 := 0; k0 < n; k0 += crossBlock {
				crossKernel(p, db, a, sa, b, sb, k0, min(k0+crossBlock, n), i0, i1, jEnd)
			}
		}()
	}
	wg.Wait()
	// Edges: rows iEnd.. of P, and columns jEnd.. of the rows above.
	for k := range n {
		ak, bk := a[k*sa:k*sa+da], b[k*sb:k*sb+db]
		for i := range da {
			pi := p[i*db : (i+1)*db]
			j0 := jEnd
			if i >= iEnd {
				j0 = 0
			}
			for j := j0; j < db; j++ {
				pi[j] += ak[i] * bk[j]
			}
		}
	}
	return p
}
