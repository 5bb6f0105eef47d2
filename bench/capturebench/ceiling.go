package capturebench

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/attnscope/attnscope/model"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"
)

// MatmulCeiling returns the GFLOP/s (2n³ per product, fastest of repeats after one
// warm-up: a ceiling, so the least disturbed run) of an n×n by n×n float32 matrix product of two graph inputs on a new
// backend of the given config (a Go backend uses the current GOMAXPROCS threads): the
// machine's matmul ceiling as the model's projections see it (their weights are graph
// inputs too).
func MatmulCeiling(backendConfig string, n, repeats int) (gflops float64, err error) {
	if n < 1 || repeats < 1 {
		return 0, fmt.Errorf("capturebench: ceiling size %d and repeats %d must be positive", n, repeats)
	}
	backend, err := model.NewBackend(backendConfig)
	if err != nil {
		return 0, err
	}
	defer backend.Finalize()
	exec, err := NewExec(backend, func(a, b *Node) *Node { return MatMul(a, b) })
	if err != nil {
		return 0, fmt.Errorf("capturebench: matmul ceiling: %w", err)
	}
	defer exec.Finalize()
	rng := rand.New(rand.NewPCG(7, uint64(n)))
	data := func() *tensors.Tensor {
		v := make([]float32, n*n)
		for i := range v {
			v[i] = rng.Float32() - 0.5
		}
		return tensors.FromFlatDataAndDimensions(v, n, n)
	}
	a, b := data(), data()
	ts := make([]float64, 0, repeats)
	for i := range repeats + 1 {
		t0 := time.Now()
		out, err := exec.Call(a, b)
		if err != nil {
			return 0, fmt.Errorf("capturebench: matmul ceiling: %w", err)
		}
		out[0].FinalizeAll()
		if i > 0 {
			ts = append(ts, time.Since(t0).Seconds())
		}
	}
	return 2 * float64(n) * float64(n) * float64(n) / slices.Min(ts) / 1e9, nil
}
