//go:build goexperiment.simd && amd64

package similarity

import (
	"math/rand/v2"
	"runtime"
	"simd/archsimd"
	"sync"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/attnscope/attnscope/internal/procstat"
)

// crossKernelOld (the kernel before packing, kept to benchmark against) accumulates P[i0:i1, 0:jEnd] += A[k0:k1, i]ᵀ B[k0:k1, j] in tiles of 4
// rows of P by 16 columns (eight AVX-512 accumulators, fused multiply-adds): i1 − i0
// and jEnd are multiples of 4 and 16. A is n×… with row stride sa, B with sb, P with
// row stride sp.
func crossKernelOld(p []float64, sp int, a []float64, sa int, b []float64, sb int, k0, k1, i0, i1, jEnd int) {
	for i := i0; i < i1; i += 4 {
		for j := 0; j < jEnd; j += 16 {
			r0, r1, r2, r3 := i*sp+j, (i+1)*sp+j, (i+2)*sp+j, (i+3)*sp+j
			c00, c01 := archsimd.LoadFloat64x8(p[r0:]), archsimd.LoadFloat64x8(p[r0+8:])
			c10, c11 := archsimd.LoadFloat64x8(p[r1:]), archsimd.LoadFloat64x8(p[r1+8:])
			c20, c21 := archsimd.LoadFloat64x8(p[r2:]), archsimd.LoadFloat64x8(p[r2+8:])
			c30, c31 := archsimd.LoadFloat64x8(p[r3:]), archsimd.LoadFloat64x8(p[r3+8:])
			for k := k0; k < k1; k++ {
				bo := k*sb + j
				b0, b1 := archsimd.LoadFloat64x8(b[bo:]), archsimd.LoadFloat64x8(b[bo+8:])
				ar := a[k*sa+i : k*sa+i+4]
				a0 := archsimd.BroadcastFloat64x8(ar[0])
				c00, c01 = a0.MulAdd(b0, c00), a0.MulAdd(b1, c01)
				a1 := archsimd.BroadcastFloat64x8(ar[1])
				c10, c11 = a1.MulAdd(b0, c10), a1.MulAdd(b1, c11)
				a2 := archsimd.BroadcastFloat64x8(ar[2])
				c20, c21 = a2.MulAdd(b0, c20), a2.MulAdd(b1, c21)
				a3 := archsimd.BroadcastFloat64x8(ar[3])
				c30, c31 = a3.MulAdd(b0, c30), a3.MulAdd(b1, c31)
			}
			c00.Store(p[r0:])
			c01.Store(p[r0+8:])
			c10.Store(p[r1:])
			c11.Store(p[r1+8:])
			c20.Store(p[r2:])
			c21.Store(p[r2+8:])
			c30.Store(p[r3:])
			c31.Store(p[r3+8:])
		}
	}
}

// crossProductOld is crossProduct before packing: unpacked 4×16 tiles over k-blocks
// of 128 tokens, the edges in plain loops.
func crossProductOld(A, B *mat.Dense) []float64 {
	n, da := A.Dims()
	_, db := B.Dims()
	ra, rb := A.RawMatrix(), B.RawMatrix()
	a, sa, b, sb := ra.Data, ra.Stride, rb.Data, rb.Stride
	p := make([]float64, da*db)
	iEnd, jEnd := da/4*4, db/16*16
	workers := min(runtime.GOMAXPROCS(0), iEnd/4)
	var wg sync.WaitGroup
	for w := range workers {
		i0, i1 := (iEnd/4*w/workers)*4, (iEnd/4*(w+1)/workers)*4
		wg.Go(func() {
			for k0 := 0; k0 < n; k0 += 128 {
				crossKernelOld(p, db, a, sa, b, sb, k0, min(k0+128, n), i0, i1, jEnd)
			}
		})
	}
	wg.Wait()
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

// BenchmarkCrossProduct times P = AᵀB on the CKA benchmark's shape (10,000 tokens ×
// 768 by 768), the packed kernel against the kernel before it; GFLOP/s counts
// 2·n·d_a·d_b per second of wall time, GFLOP/CPU-s per second of the process's CPU
// time (the machine may be shared).
func BenchmarkCrossProduct(b *testing.B) {
	n, da, db := 10000, 768, 768
	rng := rand.New(rand.NewPCG(1, 2))
	x, y := mat.NewDense(n, da, nil), mat.NewDense(n, db, nil)
	for _, m := range []*mat.Dense{x, y} {
		d := m.RawMatrix().Data
		for i := range d {
			d[i] = rng.NormFloat64()
		}
	}
	for _, c := range []struct {
		name string
		f    func(A, B *mat.Dense) []float64
	}{{"packed", crossProduct}, {"old", crossProductOld}} {
		b.Run(c.name, func(b *testing.B) {
			cpu0 := procstat.CPUTime()
			for b.Loop() {
				c.f(x, y)
			}
			flop := 2 * float64(n*da*db) * float64(b.N)
			b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric(flop/(procstat.CPUTime()-cpu0).Seconds()/1e9, "GFLOP/CPU-s")
		})
	}
}
