//go:build !(goexperiment.simd && amd64)

package seq2seq

// dot needs GOEXPERIMENT=simd on amd64 for its vector form; elsewhere the scalar one runs.
func dot(a, b []float32) float32 { return dotScalar(a, b) }
