package analysis

import (
	"context"
	"math"
)

// Default thresholds of spec §3.4 (PROPOSED there; the original offers no code).
const (
	DefaultRedundancyTau     = 0.1  // head pairs with mean JS distance < τ are redundant
	DefaultUniformThreshold  = 0.95 // mean normalised row entropy above it: uniform collapse
	DefaultRankCollapseBelow = 0.05 // mean JS distance between rows below it: rank collapse
)

// HeadDiversity is the PROPOSED head diversity of spec §3.4:
// D_l = mean_{h<h'} mean_i JSdist(A_{l,h}[i], A_{l,h'}[i]) (scipy JS distance, rows
// with zero mass skipped). Output [L]; a layer with one head has D = 0.
func HeadDiversity(att *Tensor) (*Tensor, error) {
	if err := Validate(att, Check{NonNegative: true}); err != nil {
		return nil, err
	}
	L, H, N := att.Shape[0], att.Shape[1], att.Shape[2]
	out := New(L)
	for l := 0; l < L; l++ {
		s, n := 0.0, 0
		for h := 0; h < H; h++ {
			for g := h + 1; g < H; g++ {
				d, _ := meanRowJS(att.Matrix(l, h), att.Matrix(l, g), N)
				s += d
				n++
			}
		}
		if n > 0 {
			out.Data[l] = s / float64(n)
		}
	}
	return out, nil
}

// HeadPair is a pair of heads of one layer with their mean row JS distance.
type HeadPair struct {
	Layer, Head1, Head2 int
	Distance            float64
}

// RedundantHeads lists the PROPOSED redundant head pairs of spec §3.4: heads h < h' of
// a layer whose mean row JS distance is below tau (DefaultRedundancyTau when tau is 0),
// in (layer, head1, head2) order.
func RedundantHeads(att *Tensor, tau float64) ([]HeadPair, error) {
	if err := Validate(att, Check{NonNegative: true}); err != nil {
		return nil, err
	}
	if tau == 0 {
		tau = DefaultRedundancyTau
	}
	L, H, N := att.Shape[0], att.Shape[1], att.Shape[2]
	var out []HeadPair
	for l := 0; l < L; l++ {
		for h := 0; h < H; h++ {
			for g := h + 1; g < H; g++ {
				if d, _ := meanRowJS(att.Matrix(l, h), att.Matrix(l, g), N); d < tau {
					out = append(out, HeadPair{l, h, g, d})
				}
			}
		}
	}
	return out, nil
}

// HeadCollapse describes one head under the collapse criteria of spec §3.4.
type HeadCollapse struct {
	Layer, Head int
	// NormEntropy = mean_i e_i / ln(n_i) over rows with n_i ≥ 2, e_i the exact row entropy
	// and n_i the number of valid (non-zero) keys of row i; 0 when no row qualifies.
	NormEntropy float64
	// RowJS = mean over row pairs i < i' (both with mass) of JSdist(A[i], A[i']).
	RowJS float64
	// Uniform: NormEntropy > the uniform threshold; RankCollapse: RowJS < the rank threshold
	// (and at least one pair of rows).
	Uniform, RankCollapse bool
}

// CollapseOptions are the thresholds of Collapse; zero values take the §3.4 defaults.
type CollapseOptions struct {
	UniformThreshold  float64 // DefaultUniformThreshold
	RankCollapseBelow float64 // DefaultRankCollapseBelow
}

// Collapse applies the PROPOSED attention-collapse criteria of spec §3.4 to every head of
// a [L,H,N,N] tensor: uniform attention when the mean normalised row entropy exceeds
// 0.95, rank collapse when rows are nearly identical (mean pairwise row JS distance
// < 0.05). The row comparison is O(N³) per head (heads run in parallel). Output in
// (layer, head) order. It is CollapseContext with context.Background().
func Collapse(att *Tensor, o CollapseOptions) ([]HeadCollapse, error) {
	return CollapseContext(context.Background(), att, o)
}

// CollapseContext is Collapse stopping with ctx's error when ctx is done.
func CollapseContext(ctx context.Context, att *Tensor, o CollapseOptions) ([]HeadCollapse, error) {
	if err := Validate(att, Check{NonNegative: true}); err != nil {
		return nil, err
	}
	if o.UniformThreshold == 0 {
		o.UniformThreshold = DefaultUniformThreshold
	}
	if o.RankCollapseBelow == 0 {
		o.RankCollapseBelow = DefaultRankCollapseBelow
	}
	L, H, N := att.Shape[0], att.Shape[1], att.Shape[2]
	out := make([]HeadCollapse, L*H)
	err := parallelFor(ctx, L*H, func(u int) {
		l, h := u/H, u%H
		m := att.Matrix(l, h)
		hc := HeadCollapse{Layer: l, Head: h}
		s, n := 0.0, 0
		for i := 0; i < N; i++ {
			row := m[i*N : (i+1)*N]
			keys := 0
			for _, v := range row {
				if v > 0 {
					keys++
				}
			}
			if keys < 2 {
				continue
			}
			e, _ := RowEntropy(row, EntropyExact)
			s += e / math.Log(float64(keys))
			n++
		}
		if n > 0 {
			hc.NormEntropy = s / float64(n)
		}
		js, pairs := rowPairsJS(ctx, m, N)
		if pairs > 0 {
			hc.RowJS = js / float64(pairs)
		}
		hc.Uniform = hc.NormEntropy > o.UniformThreshold
		hc.RankCollapse = pairs > 0 && hc.RowJS < o.RankCollapseBelow
		out[u] = hc
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
