// Package analysis holds the attention analyses of attnscope as pure functions: dense
// tensors in, dense tensors out, no I/O. Attention tensors use the layout
// [layer, head, query, key] ([L,H,N,N]); rows are queries ("who looks"), columns keys
// ("who is looked at"). All arithmetic is float64. Tensors are the shared
// *tensor.Tensor (aliased here as Tensor); package tensor is the only project package
// analysis imports.
//
// Each function's doc comment gives its formula and where it comes from: the
// followup-attention code base (attwizard, spec seeds.md §1.4), Abnar & Zuidema 2020
// (rollout, flow), the autoencoder attention analyzer (§3.3, §3.4), the Text_to_Python
// notebook (§5.4), or PROPOSED where the original only announced the analysis (§1.10).
//
// Input errors are returned as *InputError values naming the layer (and head, row where
// known); callers add the sample and pass.
package analysis

import (
	"errors"
	"fmt"
	"math"

	"github.com/attnscope/attnscope/tensor"
)

// Tensor is the shared dense array type of attnscope (package tensor): row-major
// float64, attention [layer, head, query, key].
type Tensor = tensor.Tensor

// New returns a zero tensor of the given shape.
func New(shape ...int) *Tensor { return tensor.New(shape...) }

// numel returns the number of elements of shape, or an error for a negative dimension.
func numel(shape []int) (int, error) { return tensor.Numel(shape) }

// FromFloat64 wraps data (not copied) as a tensor of the given shape.
func FromFloat64(shape []int, data []float64) (*Tensor, error) {
	return tensor.FromFloat64(shape, data)
}

// FromFloat32 converts float32 data (e.g. a captured attention tensor) to a float64 tensor.
func FromFloat32(shape []int, data []float32) (*Tensor, error) {
	return tensor.FromFloat32(shape, data)
}

// FromMatrices stacks equally sized square matrices (rows of rows) into a [len(m), N, N] tensor.
func FromMatrices(m ...[][]float64) (*Tensor, error) {
	if len(m) == 0 {
		return nil, errors.New("no matrices")
	}
	n := len(m[0])
	t := New(len(m), n, n)
	for l, mat := range m {
		if len(mat) != n {
			return nil, fmt.Errorf("matrix %d has %d rows, want %d", l, len(mat), n)
		}
		for i, row := range mat {
			if len(row) != n {
				return nil, fmt.Errorf("matrix %d row %d has %d values, want %d", l, i, len(row), n)
			}
			copy(t.Data[(l*n+i)*n:], row)
		}
	}
	return t, nil
}

// InputError reports attention that an analysis cannot accept. Layer, Head and Row are
// -1 when they do not apply.
type InputError struct {
	Layer, Head, Row int
	Reason           string
}

func (e *InputError) Error() string {
	s := ""
	if e.Layer >= 0 {
		s += fmt.Sprintf("layer %d", e.Layer)
	}
	if e.Head >= 0 {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("head %d", e.Head)
	}
	if e.Row >= 0 {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("row %d", e.Row)
	}
	if s == "" {
		return e.Reason
	}
	return s + ": " + e.Reason
}

func inputErr(layer, head, row int, format string, args ...any) error {
	return &InputError{Layer: layer, Head: head, Row: row, Reason: fmt.Sprintf(format, args...)}
}

// RowSumTolerance is the default tolerance on |Σ_j a_ij − 1| for analyses that need
// row-stochastic attention (float32 softmax rows sum to 1 within ~1e-6).
const RowSumTolerance = 1e-4

// Check says what Validate checks beyond rank, shape and finiteness.
type Check struct {
	// NonNegative rejects negative weights.
	NonNegative bool
	// RowStochastic rejects rows whose sum differs from 1 by more than Tolerance
	// (RowSumTolerance when 0). AllowZeroRows accepts rows that are entirely 0 (padding).
	RowStochastic bool
	AllowZeroRows bool
	Tolerance     float64
}

// Validate checks that att is a finite [L,H,N,N] tensor with square matrices and
// L, H, N ≥ 1, plus what c asks for. The error names the layer, head and row.
func Validate(att *Tensor, c Check) error {
	if att == nil {
		return inputErr(-1, -1, -1, "no attention tensor")
	}
	if len(att.Shape) != 4 {
		return inputErr(-1, -1, -1, "attention has shape %v, want 4 dimensions [layer, head, query, key]", att.Shape)
	}
	L, H, N, M := att.Shape[0], att.Shape[1], att.Shape[2], att.Shape[3]
	if N != M {
		return inputErr(-1, -1, -1, "attention matrices are %d×%d, want square", N, M)
	}
	if L < 1 || H < 1 || N < 1 {
		return inputErr(-1, -1, -1, "attention has shape %v, want every dimension ≥ 1", att.Shape)
	}
	if len(att.Data) != L*H*N*N {
		return inputErr(-1, -1, -1, "attention has %d values for shape %v", len(att.Data), att.Shape)
	}
	tol := c.Tolerance
	if tol == 0 {
		tol = RowSumTolerance
	}
	for l := 0; l < L; l++ {
		for h := 0; h < H; h++ {
			m := att.Matrix(l, h)
			for i := 0; i < N; i++ {
				row := m[i*N : (i+1)*N]
				s := 0.0
				for j, v := range row {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						return inputErr(l, h, i, "weight at key %d is %v, want a finite number", j, v)
					}
					if c.NonNegative && v < 0 {
						return inputErr(l, h, i, "weight at key %d is %g, want ≥ 0", j, v)
					}
					s += v
				}
				if c.RowStochastic && math.Abs(s-1) > tol && !(c.AllowZeroRows && s == 0) {
					return inputErr(l, h, i, "weights sum to %g, want 1 (±%g)", s, tol)
				}
			}
		}
	}
	return nil
}

// validateMatrices checks a [L,N,N] stack of layer matrices (finite, square, optional
// non-negativity).
func validateMatrices(m *Tensor, nonNeg bool) error {
	if m == nil {
		return inputErr(-1, -1, -1, "no matrices")
	}
	if len(m.Shape) != 3 {
		return inputErr(-1, -1, -1, "layer matrices have shape %v, want 3 dimensions [layer, query, key]", m.Shape)
	}
	L, N := m.Shape[0], m.Shape[1]
	if m.Shape[2] != N {
		return inputErr(-1, -1, -1, "layer matrices are %d×%d, want square", N, m.Shape[2])
	}
	if L < 1 || N < 1 {
		return inputErr(-1, -1, -1, "layer matrices have shape %v, want every dimension ≥ 1", m.Shape)
	}
	if len(m.Data) != L*N*N {
		return inputErr(-1, -1, -1, "layer matrices have %d values for shape %v", len(m.Data), m.Shape)
	}
	for l := 0; l < L; l++ {
		mat := m.Matrix(l, 0)
		for k, v := range mat {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return inputErr(l, -1, k/N, "weight at key %d is %v, want a finite number", k%N, v)
			}
			if nonNeg && v < 0 {
				return inputErr(l, -1, k/N, "weight at key %d is %g, want ≥ 0", k%N, v)
			}
		}
	}
	return nil
}

// Condense4D brings attention to [L,H,N,N] as followup-attention's condense_to_4_dim does
// (spec §1.4): a 6-D generation tensor (S,L,1,H,N,N) is summed over axis 2 and then over
// axis 0; a 4-D tensor is returned as is; any other rank is an error. Unlike the
// original's squeeze (§1.12), singleton layer or head axes are kept.
func Condense4D(t *Tensor) (*Tensor, error) {
	if t == nil {
		return nil, inputErr(-1, -1, -1, "no attention tensor")
	}
	switch len(t.Shape) {
	case 4:
		return t, nil
	case 6:
		S, L, B, H, N, M := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3], t.Shape[4], t.Shape[5]
		if n, err := numel(t.Shape); err != nil || n != len(t.Data) {
			return nil, inputErr(-1, -1, -1, "attention has %d values for shape %v", len(t.Data), t.Shape)
		}
		out := New(L, H, N, M)
		blk := H * N * M
		for s := 0; s < S; s++ {
			for l := 0; l < L; l++ {
				dst := out.Data[l*blk : (l+1)*blk]
				for b := 0; b < B; b++ {
					src := t.Data[((s*L+l)*B+b)*blk:]
					for k := range dst {
						dst[k] += src[k]
					}
				}
			}
		}
		return out, nil
	}
	return nil, inputErr(-1, -1, -1, "attention has shape %v, want 4 dimensions [L,H,N,N] or 6 [S,L,1,H,N,N]", t.Shape)
}

// FromLayerMatrices turns a [L,N,N] tensor into [L,1,N,N] (one head per layer), for
// attention exported without a head axis.
func FromLayerMatrices(t *Tensor) (*Tensor, error) {
	if t == nil || len(t.Shape) != 3 {
		return nil, inputErr(-1, -1, -1, "want a [L,N,N] tensor")
	}
	return &Tensor{Shape: []int{t.Shape[0], 1, t.Shape[1], t.Shape[2]}, Data: t.Data}, nil
}
