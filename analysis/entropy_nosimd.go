//go:build !(goexperiment.simd && amd64)

package analysis

// entropyTermsVec needs GOEXPERIMENT=simd on amd64; elsewhere the scalar loop runs.
func entropyTermsVec(_ []float64, h, _, _ float64, _ bool) (float64, bool) { return h, false }
