package analysis

import (
	"fmt"
	"math"
)

// axisSplit returns (outer, size, inner) for axis dim of shape.
func axisSplit(shape []int, dim int) (int, int, int) {
	outer, inner := 1, 1
	for _, d := range shape[:dim] {
		outer *= d
	}
	for _, d := range shape[dim+1:] {
		inner *= d
	}
	return outer, shape[dim], inner
}

func checkTensor(t *Tensor) error {
	if t == nil {
		return inputErr(-1, -1, -1, "no tensor")
	}
	n, err := numel(t.Shape)
	if err != nil || n != len(t.Data) {
		return inputErr(-1, -1, -1, "tensor has %d values for shape %v", len(t.Data), t.Shape)
	}
	return nil
}

// ExtractSlice is followup-attention's extract_single_slice: the sub-tensor at index
// idx (negative counts from the end, as in numpy) along axis dim; the axis is removed.
func ExtractSlice(t *Tensor, dim, idx int) (*Tensor, error) {
	if err := checkTensor(t); err != nil {
		return nil, err
	}
	if dim < 0 || dim >= len(t.Shape) {
		return nil, inputErr(-1, -1, -1, "dim_to_extract %d: tensor of shape %v has axes 0..%d", dim, t.Shape, len(t.Shape)-1)
	}
	outer, size, inner := axisSplit(t.Shape, dim)
	k := idx
	if k < 0 {
		k += size
	}
	if k < 0 || k >= size {
		return nil, inputErr(-1, -1, -1, "slice_to_extract %d is out of range for axis %d of size %d", idx, dim, size)
	}
	shape := append(append([]int(nil), t.Shape[:dim]...), t.Shape[dim+1:]...)
	out := New(shape...)
	for o := 0; o < outer; o++ {
		copy(out.Data[o*inner:(o+1)*inner], t.Data[(o*size+k)*inner:(o*size+k+1)*inner])
	}
	return out, nil
}

// ExtractHalfAndSum is followup-attention's extract_half_and_sum: with k = ⌊size/2⌋ along
// axis dim, half "lower" sums indices [0,k) and "upper" sums [k,size); the axis is removed.
func ExtractHalfAndSum(t *Tensor, dim int, half string) (*Tensor, error) {
	if err := checkTensor(t); err != nil {
		return nil, err
	}
	if dim < 0 || dim >= len(t.Shape) {
		return nil, inputErr(-1, -1, -1, "dim %d: tensor of shape %v has axes 0..%d", dim, t.Shape, len(t.Shape)-1)
	}
	outer, size, inner := axisSplit(t.Shape, dim)
	k := size / 2
	lo, hi := 0, k
	switch half {
	case "lower":
	case "upper":
		lo, hi = k, size
	default:
		return nil, fmt.Errorf("half %q: want lower or upper", half)
	}
	shape := append(append([]int(nil), t.Shape[:dim]...), t.Shape[dim+1:]...)
	out := New(shape...)
	for o := 0; o < outer; o++ {
		dst := out.Data[o*inner : (o+1)*inner]
		for s := lo; s < hi; s++ {
			for x, v := range t.Data[(o*size+s)*inner : (o*size+s+1)*inner] {
				dst[x] += v
			}
		}
	}
	return out, nil
}

// MaxKPredictions is followup-attention's max_k_predictions cut: with P prompt tokens,
// when N > P+k the last two (square) axes are cut to [:P+k, :P+k]; otherwise t is
// returned unchanged.
func MaxKPredictions(t *Tensor, prompt, k int) (*Tensor, error) {
	if err := checkTensor(t); err != nil {
		return nil, err
	}
	r := len(t.Shape)
	if r < 2 || t.Shape[r-1] != t.Shape[r-2] {
		return nil, inputErr(-1, -1, -1, "tensor has shape %v, want square last two axes", t.Shape)
	}
	if prompt < 0 || k < 0 {
		return nil, inputErr(-1, -1, -1, "prompt length %d and k %d must be ≥ 0", prompt, k)
	}
	N := t.Shape[r-1]
	M := prompt + k
	if N <= M {
		return t, nil
	}
	shape := append([]int(nil), t.Shape...)
	shape[r-1], shape[r-2] = M, M
	out := New(shape...)
	outer := len(t.Data) / (N * N)
	for o := 0; o < outer; o++ {
		for i := 0; i < M; i++ {
			copy(out.Data[(o*M+i)*M:(o*M+i+1)*M], t.Data[(o*N+i)*N:(o*N+i)*N+M])
		}
	}
	return out, nil
}

// Symmetry strategies of make_symmetric.
const (
	SymMax  = "max"
	SymMean = "mean"
	SymSum  = "sum"
)

// MakeSymmetric is followup-attention's make_symmetric on an [N,N] matrix: "max" →
// max(M, Mᵀ); "mean" → (M+Mᵀ)/2; "sum" (default, "") → M+Mᵀ with the diagonal halved
// (so it keeps the original diagonal).
func MakeSymmetric(m *Tensor, strategy string) (*Tensor, error) {
	if err := checkTensor(m); err != nil {
		return nil, err
	}
	if len(m.Shape) != 2 || m.Shape[0] != m.Shape[1] {
		return nil, inputErr(-1, -1, -1, "matrix has shape %v, want square [N,N]", m.Shape)
	}
	N := m.Shape[0]
	out := New(N, N)
	for i := 0; i < N; i++ {
		for j := 0; j < N; j++ {
			a, b := m.Data[i*N+j], m.Data[j*N+i]
			var v float64
			switch strategy {
			case SymMax:
				v = math.Max(a, b)
			case SymMean:
				v = (a + b) / 2
			case SymSum, "":
				v = a + b
				if i == j {
					v = a
				}
			default:
				return nil, fmt.Errorf("strategy %q: want max, mean or sum", strategy)
			}
			out.Data[i*N+j] = v
		}
	}
	return out, nil
}

// UniformBaseline is followup-attention's generate_uniform_attention: U[i,j] = 1/(i+1)
// for j ≤ i, else 0. Output [N,N].
func UniformBaseline(n int) (*Tensor, error) {
	if n < 1 {
		return nil, inputErr(-1, -1, -1, "size %d, want ≥ 1", n)
	}
	out := New(n, n)
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			out.Data[i*n+j] = 1 / float64(i+1)
		}
	}
	return out, nil
}

// CopyCatBaseline is followup-attention's generate_copy_cat_attention: C[i,j] = 1 iff
// tokens[i] == tokens[j] (diagonal included), else 0. Output [N,N].
func CopyCatBaseline(tokens []string) (*Tensor, error) {
	n := len(tokens)
	if n < 1 {
		return nil, inputErr(-1, -1, -1, "no tokens")
	}
	out := New(n, n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			if tokens[i] == tokens[j] {
				out.Data[i*n+j] = 1
			}
		}
	}
	return out, nil
}

// GaussianBaseline is followup-attention's
// generate_gaussian_attention_in_neighborhood_from_metadata: row i is scipy's
// gaussian_filter1d(e_i, sigma, mode="constant", cval=0, truncate=4), i.e.
// G[i,j] = w(|i−j|), w(k) = exp(−k²/2σ²) / Σ_{|k'|≤r} exp(−k'²/2σ²) for |k| ≤ r = ⌊4σ+0.5⌋.
func GaussianBaseline(n int, sigma float64) (*Tensor, error) {
	if n < 1 {
		return nil, inputErr(-1, -1, -1, "size %d, want ≥ 1", n)
	}
	if !(sigma > 0) || math.IsInf(sigma, 0) {
		return nil, inputErr(-1, -1, -1, "sigma %v, want a finite number > 0", sigma)
	}
	r := int(4*sigma + 0.5)
	w := make([]float64, r+1)
	s := 0.0
	for k := -r; k <= r; k++ {
		v := math.Exp(-0.5 * float64(k*k) / (sigma * sigma))
		s += v
		if k >= 0 {
			w[k] = v
		}
	}
	out := New(n, n)
	for i := 0; i < n; i++ {
		for j := max(0, i-r); j <= min(n-1, i+r); j++ {
			d := i - j
			if d < 0 {
				d = -d
			}
			out.Data[i*n+j] = w[d] / s
		}
	}
	return out, nil
}
