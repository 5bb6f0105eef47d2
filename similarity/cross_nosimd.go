//go:build !(goexperiment.simd && amd64)

package similarity

const have512 = false

func crossKernel(kc int, ap, bp []float64, c []float64, sc int) {
	panic("similarity: the AVX-512 kernel is not built")
}
