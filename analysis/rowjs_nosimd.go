//go:build !(goexperiment.simd && amd64)

package analysis

import "context"

// rowPairsJSVec needs GOEXPERIMENT=simd on amd64; elsewhere the scalar loop runs.
func rowPairsJSVec(context.Context, []float64, int) (float64, int, bool) { return 0, 0, false }
