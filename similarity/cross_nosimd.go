//go:build !(goexperiment.simd && amd64)

package similarity

const have512 = false

func crossKernel(p []float64, sp int, a []float64, sa int, b []float64, sb int, k0, k1, i0, i1, jEnd int) {
	panic("similarity: the AVX-512 kernel is not built")
}
