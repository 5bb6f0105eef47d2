//go:build goexperiment.simd && amd64

package similarity

import (
	"simd/archsimd"
)

// have512 reports whether the AVX-512 kernel of crossProduct can run on this CPU.
var have512 = archsimd.X86.AVX512()

// crossKernel accumulates P[i0:i1, 0:jEnd] += A[k0:k1, i]ᵀ B[k0:k1, j] in tiles of 4
// rows of P by 16 columns (eight AVX-512 accumulators, fused multiply-adds): i1 − i0
// and jEnd are multiples of 4 and 16. A is n×… with row stride sa, B with sb, P with
// row stride sp.
func crossKernel(p []float64, sp int, a []float64, sa int, b []float64, sb int, k0, k1, i0, i1, jEnd int) {
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
