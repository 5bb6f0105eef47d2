package analysis

import (
	"fmt"
	"math"
)

// HeadReduce names how the heads of a layer are combined into one N×N matrix.
type HeadReduce string

// Head reductions: followup-attention's condense_head_strategy values.
const (
	HeadSum  HeadReduce = "sum"
	HeadMean HeadReduce = "mean"
	HeadMax  HeadReduce = "max"
)

// ReduceHeads combines the heads of each layer of a [L,H,N,N] tensor into a [L,N,N]
// tensor: C_l = Σ_h A[l,h] (sum), mean_h A[l,h] (mean) or max_h A[l,h] (max,
// element-wise). It checks rank, shape and finiteness.
func ReduceHeads(att *Tensor, how HeadReduce) (*Tensor, error) {
	if err := Validate(att, Check{}); err != nil {
		return nil, err
	}
	return reduceHeads(att, how)
}

func reduceHeads(att *Tensor, how HeadReduce) (*Tensor, error) {
	L, H, N := att.Shape[0], att.Shape[1], att.Shape[2]
	out := New(L, N, N)
	for l := 0; l < L; l++ {
		dst := out.Matrix(l, 0)
		switch how {
		case HeadSum, HeadMean:
			for h := 0; h < H; h++ {
				for k, v := range att.Matrix(l, h) {
					dst[k] += v
				}
			}
			if how == HeadMean {
				inv := float64(H)
				for k := range dst {
					dst[k] /= inv
				}
			}
		case HeadMax:
			copy(dst, att.Matrix(l, 0))
			for h := 1; h < H; h++ {
				for k, v := range att.Matrix(l, h) {
					if v > dst[k] {
						dst[k] = v
					}
				}
			}
		default:
			return nil, fmt.Errorf("head reduction %q: want sum, mean or max", how)
		}
	}
	return out, nil
}

// NaiveMax is followup-attention's compute_naive_max_aggregation: M = max_{l,h} A[l,h]
// element-wise over a [L,H,N,N] tensor, giving N×N (as a [N,N] tensor).
func NaiveMax(att *Tensor) (*Tensor, error) {
	if err := Validate(att, Check{}); err != nil {
		return nil, err
	}
	N := att.Shape[2]
	out := New(N, N)
	copy(out.Data, att.Matrix(0, 0))
	for l := 0; l < att.Shape[0]; l++ {
		for h := 0; h < att.Shape[1]; h++ {
			for k, v := range att.Matrix(l, h) {
				if v > out.Data[k] {
					out.Data[k] = v
				}
			}
		}
	}
	return out, nil
}

// NaiveMean is followup-attention's compute_naive_mean_aggregation:
// M = (1/(L·H)) Σ_{l,h} A[l,h] over a [L,H,N,N] tensor, giving [N,N].
func NaiveMean(att *Tensor) (*Tensor, error) {
	if err := Validate(att, Check{}); err != nil {
		return nil, err
	}
	return NaiveMeanLayers(att.Shape[0], LayerViews(att))
}

// RawLastLayer is followup-attention's raw_weights_last_layer: Σ_h A[L−1,h] ([N,N]; heads
// summed, not averaged, as in the original, §1.12).
func RawLastLayer(att *Tensor) (*Tensor, error) { return rawLayer(att, true) }

// RawFirstLayer is followup-attention's raw_weights_first_layer: Σ_h A[0,h] ([N,N]).
func RawFirstLayer(att *Tensor) (*Tensor, error) { return rawLayer(att, false) }

func rawLayer(att *Tensor, last bool) (*Tensor, error) {
	if err := Validate(att, Check{}); err != nil {
		return nil, err
	}
	l := 0
	if last {
		l = att.Shape[0] - 1
	}
	N := att.Shape[2]
	out := New(N, N)
	for h := 0; h < att.Shape[1]; h++ {
		for k, v := range att.Matrix(l, h) {
			out.Data[k] += v
		}
	}
	return out, nil
}

// MeanOfFollowers is followup-attention's compute_mean_of_followers on an N×N matrix M
// ([N,N] tensor): v[j] = (Σ_i M[i,j]) / (N − j), the column sum over the number of rows
// at or below the diagonal (meant for lower-triangular attention). Output [N].
func MeanOfFollowers(m *Tensor) (*Tensor, error) {
	if m == nil || len(m.Shape) != 2 || m.Shape[0] != m.Shape[1] || m.Shape[0] < 1 || len(m.Data) != m.Shape[0]*m.Shape[1] {
		var s []int
		if m != nil {
			s = m.Shape
		}
		return nil, inputErr(-1, -1, -1, "matrix has shape %v, want a non-empty square [N,N] matrix", s)
	}
	if err := checkFinite(m.Data); err != nil {
		return nil, err
	}
	N := m.Shape[0]
	out := New(N)
	for i := 0; i < N; i++ {
		for j := 0; j < N; j++ {
			out.Data[j] += m.Data[i*N+j]
		}
	}
	for j := 0; j < N; j++ {
		out.Data[j] /= float64(N - j)
	}
	return out, nil
}

func checkFinite(d []float64) error {
	for k, v := range d {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return inputErr(-1, -1, -1, "value %d is %v, want a finite number", k, v)
		}
	}
	return nil
}

// RolloutOptions selects the rollout variant.
type RolloutOptions struct {
	// Heads combines the heads of a layer (HeadMean when empty, as both originals do).
	Heads HeadReduce
	// Residual adds the identity and renormalises each row: Â_l = rownorm(A_l + I)
	// (Abnar & Zuidema 2020; AttentionSpan's aggregate_attention). Without it Â_l = A_l,
	// the setting of followup-attention's compute_attention_rollout_from_tensor pass.
	Residual bool
}

// Rollout computes attention rollout (Abnar & Zuidema 2020; followup-attention's
// compute_attention_rollout): from a [L,H,N,N] tensor, A_l = reduce_h A[l,h],
// Â_l = A_l or rownorm(A_l + I) (opts.Residual), R_0 = Â_0, R_l = Â_l · R_{l−1}; output
// all R_l as [L,N,N]. R_{L−1} with Residual and HeadMean equals AttentionSpan's
// aggregate_attention.
func Rollout(att *Tensor, opts RolloutOptions) (*Tensor, error) {
	if err := Validate(att, Check{}); err != nil {
		return nil, err
	}
	how := opts.Heads
	if how == "" {
		how = HeadMean
	}
	c, err := reduceHeads(att, how)
	if err != nil {
		return nil, err
	}
	return RolloutMatrices(c, opts.Residual)
}

// RolloutMatrices is Rollout on already combined layer matrices [L,N,N].
func RolloutMatrices(c *Tensor, residual bool) (*Tensor, error) {
	if err := validateMatrices(c, false); err != nil {
		return nil, err
	}
	L, N := c.Shape[0], c.Shape[1]
	out := New(L, N, N)
	hat := make([]float64, N*N)
	for l := 0; l < L; l++ {
		copy(hat, c.Matrix(l, 0))
		if residual {
			for i := 0; i < N; i++ {
				row := hat[i*N : (i+1)*N]
				row[i]++
				s := 0.0
				for _, v := range row {
					s += v
				}
				if s == 0 {
					return nil, inputErr(l, -1, i, "row of A+I sums to 0, cannot normalise")
				}
				for j := range row {
					row[j] /= s
				}
			}
		}
		if l == 0 {
			copy(out.Matrix(0, 0), hat)
			continue
		}
		matMul(out.Matrix(l, 0), hat, out.Matrix(l-1, 0), N)
	}
	return out, nil
}

// ResidualWeights is the notebooks' add_residual_weights: 0.5·A_l + 0.5·I for every
// layer matrix of a [L,N,N] tensor.
func ResidualWeights(c *Tensor) (*Tensor, error) {
	if err := validateMatrices(c, false); err != nil {
		return nil, err
	}
	L, N := c.Shape[0], c.Shape[1]
	out := New(L, N, N)
	for l := 0; l < L; l++ {
		src, dst := c.Matrix(l, 0), out.Matrix(l, 0)
		for k, v := range src {
			dst[k] = 0.5 * v
		}
		for i := 0; i < N; i++ {
			dst[i*N+i] += 0.5
		}
	}
	return out, nil
}

// SumLayers sums a [L,N,N] (or any [L,...]) tensor over its first axis
// (followup-attention's sum_over_1st_dimension, the rollout_condensed_all pass).
func SumLayers(t *Tensor) (*Tensor, error) {
	if t == nil || len(t.Shape) < 1 || t.Shape[0] < 1 {
		return nil, inputErr(-1, -1, -1, "want a tensor with a non-empty first axis")
	}
	n, err := numel(t.Shape)
	if err != nil || n != len(t.Data) {
		return nil, inputErr(-1, -1, -1, "tensor has %d values for shape %v", len(t.Data), t.Shape)
	}
	blk := n / t.Shape[0]
	out := New(t.Shape[1:]...)
	for l := 0; l < t.Shape[0]; l++ {
		for k, v := range t.Data[l*blk : (l+1)*blk] {
			out.Data[k] += v
		}
	}
	return out, nil
}

// matMul sets dst = a·b for n×n row-major matrices (dst must not alias a or b).
func matMul(dst, a, b []float64, n int) {
	for i := range dst {
		dst[i] = 0
	}
	for i := 0; i < n; i++ {
		drow := dst[i*n : (i+1)*n]
		for k := 0; k < n; k++ {
			aik := a[i*n+k]
			if aik == 0 {
				continue
			}
			brow := b[k*n : (k+1)*n]
			for j, bv := range brow {
				drow[j] += aik * bv
			}
		}
	}
}

// Direction says on which side the transitive recurrence multiplies.
type Direction string

// Multiplication directions of compute_transitive_attention.
const (
	Left  Direction = "left"
	Right Direction = "right"
)

// TransitiveOptions are compute_transitive_attention's kwargs. The zero value is not the
// original's default; use DefaultTransitive.
type TransitiveOptions struct {
	Heads       HeadReduce // condense_head_strategy: sum (default), mean or max
	Alpha, Beta float64    // alpha, beta (0.5, 0.5 by default)
	Direction   Direction  // mult_direction: left (default) or right
}

// DefaultTransitive holds the original's defaults: sum, α = β = 0.5, left.
var DefaultTransitive = TransitiveOptions{Heads: HeadSum, Alpha: 0.5, Beta: 0.5, Direction: Left}

// Transitive is followup-attention's compute_transitive_attention on a [L,H,N,N] tensor:
// C_l = reduce_h A[l,h]; T_0 = C_0; left: T_l = C_l·((1−α)I + αT_{l−1}) + βT_{l−1};
// right: T_l = ((1−α)I + αT_{l−1})·C_l + βT_{l−1}. Output all T_l as [L,N,N].
func Transitive(att *Tensor, o TransitiveOptions) (*Tensor, error) {
	c, o, err := transitiveLayers(att, o)
	if err != nil {
		return nil, err
	}
	L, N := c.Shape[0], c.Shape[1]
	out := New(L, N, N)
	copy(out.Matrix(0, 0), c.Matrix(0, 0))
	for l := 1; l < L; l++ {
		transitiveStep(out.Matrix(l, 0), c.Matrix(l, 0), out.Matrix(l-1, 0), N, o)
	}
	return out, nil
}

// transitiveLayers checks att and o, fills o's defaults (sum, left) and returns the
// head-reduced layer matrices C_l [L,N,N] with the completed options.
func transitiveLayers(att *Tensor, o TransitiveOptions) (*Tensor, TransitiveOptions, error) {
	if err := Validate(att, Check{}); err != nil {
		return nil, o, err
	}
	if o.Heads == "" {
		o.Heads = HeadSum
	}
	if o.Direction == "" {
		o.Direction = Left
	}
	if o.Direction != Left && o.Direction != Right {
		return nil, o, fmt.Errorf("mult_direction %q: want left or right", o.Direction)
	}
	c, err := reduceHeads(att, o.Heads)
	return c, o, err
}

// transitiveStep sets dst = C·((1−α)I + αP) + βP (left) or ((1−α)I + αP)·C + βP (right).
func transitiveStep(dst, c, prev []float64, n int, o TransitiveOptions) {
	m := make([]float64, n*n)
	for k, v := range prev {
		m[k] = o.Alpha * v
	}
	for i := 0; i < n; i++ {
		m[i*n+i] += 1 - o.Alpha
	}
	if o.Direction == Right {
		matMul(dst, m, c, n)
	} else {
		matMul(dst, c, m, n)
	}
	for k, v := range prev {
		dst[k] += o.Beta * v
	}
}

// TransitiveTwoLayer is the PROPOSED two-layer variant of transitive attention (spec §1.4;
// the README's "transitive attention of the last and second-last layer"):
// T = C_{L−1}·((1−α)I + αC_{L−2}) + βC_{L−2} (left) or ((1−α)I + αC_{L−2})·C_{L−1} + βC_{L−2}
// (right), from a [L,H,N,N] tensor with L ≥ 2. Output [N,N].
func TransitiveTwoLayer(att *Tensor, o TransitiveOptions) (*Tensor, error) {
	c, o, err := transitiveLayers(att, o)
	if err != nil {
		return nil, err
	}
	if c.Shape[0] < 2 {
		return nil, inputErr(-1, -1, -1, "two-layer transitive attention needs at least 2 layers, got %d", c.Shape[0])
	}
	L, N := c.Shape[0], c.Shape[1]
	out := New(N, N)
	transitiveStep(out.Data, c.Matrix(L-1, 0), c.Matrix(L-2, 0), N, o)
	return out, nil
}
