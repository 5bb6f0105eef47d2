//go:build goexperiment.simd && amd64

package similarity

import (
	"simd/archsimd"
)

// have512 reports whether the AVX-512 kernel of crossProduct can run on this CPU.
var have512 = archsimd.X86.AVX512()

// crossKernel adds the product of a packed panel of A (kc rows of crossMR = 8 values)
// and a packed panel of B (kc rows of crossNR = 24 values) to the 8×24 tile of P at c
// (row stride sc): 24 AVX-512 accumulators; per token 3 loads of B, 8 broadcasts of A
// and 24 fused multiply-adds. The loop is in assembly (cross_amd64.s): written with
// simd/archsimd, Go 1.27's register allocator moved every accumulator and spilled
// several per token (VFMADD213PD returns into the broadcast's register).
func crossKernel(kc int, ap, bp []float64, c []float64, sc int) {
	if kc <= 0 {
		return
	}
	// The bounds the assembly relies on.
	_, _ = ap[kc*crossMR-1], bp[kc*crossNR-1]
	_ = c[(crossMR-1)*sc+crossNR-1]
	crossKernel8x24(kc, &ap[0], &bp[0], &c[0], sc)
}

//go:noescape
func crossKernel8x24(kc int, ap, bp, c *float64, sc int)
