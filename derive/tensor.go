package derive

import (
	"fmt"
	"math"

	"github.com/attnscope/attnscope/tensor"
)

// AttentionTolerance is how far from 1 a row of attention may sum where a pass needs
// rows that sum to 1 (float32 softmax outputs summed in float64 stay well inside it).
const AttentionTolerance = 1e-4

// checkAttention validates an attention tensor for a pass and returns it as
// [L, H, N, N] ([L, N, N] is read as one head per layer). It rejects a wrong rank,
// non-square matrices, NaN or infinite values and negative weights, and, if
// rowStochastic, rows that do not sum to 1 (all-zero rows, such as the padding of a
// batch or the last generated token, are allowed). Errors name the layer (counted from
// firstLayer, the index of t's first layer in the sample), head and row.
func checkAttention(t *tensor.Tensor, rowStochastic bool, firstLayer int) (*tensor.Tensor, error) {
	if err := t.Check(); err != nil {
		return nil, err
	}
	switch len(t.Shape) {
	case 3:
		t = &tensor.Tensor{Shape: []int{t.Shape[0], 1, t.Shape[1], t.Shape[2]}, Data: t.Data}
	case 4:
	default:
		return nil, fmt.Errorf("attention has shape %v (rank %d), want [layer, head, query, key] or [layer, query, key]", t.Shape, len(t.Shape))
	}
	L, H, N, K := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	if N != K {
		return nil, fmt.Errorf("attention has shape %v: matrices are %d×%d, not square", t.Shape, N, K)
	}
	if L == 0 || H == 0 || N == 0 {
		return nil, fmt.Errorf("attention has shape %v: empty", t.Shape)
	}
	for l := 0; l < L; l++ {
		for h := 0; h < H; h++ {
			for i := 0; i < N; i++ {
				row := t.Data[((l*H+h)*N+i)*N:][:N]
				var s float64
				for j, v := range row {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						return nil, fmt.Errorf("layer %d head %d: weight [%d,%d] is %v", firstLayer+l, h, i, j, v)
					}
					if v < 0 {
						return nil, fmt.Errorf("layer %d head %d: weight [%d,%d] is negative (%g)", firstLayer+l, h, i, j, v)
					}
					s += v
				}
				if rowStochastic && s != 0 && math.Abs(s-1) > AttentionTolerance {
					return nil, fmt.Errorf("layer %d head %d: row %d sums to %g, want 1 (±%g)", firstLayer+l, h, i, s, AttentionTolerance)
				}
			}
		}
	}
	return t, nil
}

// checkFinite rejects NaN and infinite values (in earlier passes' outputs).
func checkFinite(t *tensor.Tensor) error {
	if err := t.Check(); err != nil {
		return err
	}
	for k, v := range t.Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("value %d of a %v tensor is %v", k, t.Shape, v)
		}
	}
	return nil
}
