// Package report turns a run into text, JSON and HTML reports: the transformer
// attention analysis of the autoencoder code base's AttentionDataAnalyzer (seeds.md
// §3.3: per-layer statistics, attention entropy and sparsity, recommendations, its
// 12-panel dashboard, attention_analysis_report.txt and attention_data_summary.json)
// and attnscope's self-contained HTML report of a run.
package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/attnscope/attnscope/analysis"
	"github.com/attnscope/attnscope/stats"
	"github.com/attnscope/attnscope/tensor"

	"gonum.org/v1/gonum/mat"
)

// LayerIO holds the statistics of the hidden state entering and leaving one layer,
// as the analyzer's attention_data_inputs/outputs captures do.
type LayerIO struct {
	Name            string // dotted module name, e.g. "blocks.3.attn"
	InMean, InStd   float64
	OutMean, OutStd float64
	// Output is the layer's output hidden state, [batch·sequence positions, width], for
	// the hidden-state norm and effective-dimensionality panels (optional).
	Output *tensor.Tensor
}

// LayerWeights holds one layer's attention weights, [batch, head, query, key].
type LayerWeights struct {
	Name    string
	Weights *tensor.Tensor
}

// WeightSummary is what the analyzer keeps of one layer's weights, so a caller can
// summarise layer by layer and drop the weights (memory one layer deep).
type WeightSummary struct {
	Name string
	// HeadEntropy and HeadSparsity are per head, on batch element 0 (see
	// HeadEntropySparsity).
	HeadEntropy, HeadSparsity []float64
	// Sparsity is the fraction of all weights (every batch element and head) < 0.1.
	Sparsity float64
	// Received is the attention each key position receives: column sums of the
	// weights averaged over batch and heads.
	Received []float64
}

// SummarizeWeights computes the analyzer's statistics of one layer's weights.
func SummarizeWeights(w *LayerWeights) (WeightSummary, error) {
	t := w.Weights
	if t == nil || len(t.Shape) != 4 || t.Check() != nil || t.Len() == 0 || t.Shape[2] != t.Shape[3] {
		return WeightSummary{}, fmt.Errorf("analyzer: weights of %s: [batch, head, N, N] weights with values expected", w.Name)
	}
	B, H, N := t.Shape[0], t.Shape[1], t.Shape[2]
	ws := WeightSummary{Name: w.Name}
	// Batch element 0 as a one-layer tensor [1, H, N, N]: per-head entropy and sparsity.
	b0 := &tensor.Tensor{Shape: []int{1, H, N, N}, Data: t.Data[:H*N*N]}
	rows, err := analysis.Rows(b0, analysis.EntropyAnalyzer)
	if err != nil {
		return ws, fmt.Errorf("analyzer: weights of %s: %w", w.Name, err)
	}
	ws.HeadEntropy = analysis.HeadMeans(rows.Entropy, nil).Data
	sp, err := analysis.Sparsity(b0, SparsityThreshold)
	if err != nil {
		return ws, fmt.Errorf("analyzer: weights of %s: %w", w.Name, err)
	}
	ws.HeadSparsity = sp.Data
	// Every batch element and head as the heads of one layer: the layer's sparsity over
	// all weights (heads have equal size, so it is their mean) and attention received
	// averaged over batch and heads.
	all := &tensor.Tensor{Shape: []int{1, B * H, N, N}, Data: t.Data}
	spAll, err := analysis.Sparsity(all, SparsityThreshold)
	if err != nil {
		return ws, fmt.Errorf("analyzer: weights of %s: %w", w.Name, err)
	}
	ws.Sparsity = analysis.LayerMeans(spAll).Data[0]
	rec, err := analysis.Received(all)
	if err != nil {
		return ws, fmt.Errorf("analyzer: weights of %s: %w", w.Name, err)
	}
	ws.Received = rec.Data
	return ws, nil
}

// CaptureSummary is attention_data_summary.json.
type CaptureSummary struct {
	NumLayers     int      `json:"num_layers"`
	TotalCaptures int      `json:"total_captures"`
	UniqueLayers  []string `json:"unique_layers"`
}

// AnalyzerData is everything the analyzer reads: per-layer input/output statistics
// (attention_data_inputs.pkl and _outputs.pkl), optional attention weights
// (attention_data_weights.pkl) and the capture summary.
type AnalyzerData struct {
	Layers  []LayerIO
	Weights []LayerWeights
	// Summaries replace Weights when the caller summarised each layer itself
	// (SummarizeWeights), in layer order.
	Summaries []WeightSummary
	Summary   *CaptureSummary
	// Seed drives the random subsample of 5000 rows for PCA (the original's is
	// unseeded; a fixed seed keeps reports reproducible).
	Seed uint64
}

// Thresholds of the analyzer's recommendations and statistics (seeds.md §3.3).
const (
	// SparsityThreshold: a weight below it counts as sparse.
	SparsityThreshold = 0.1
	// EntropyEpsilon is added inside the logarithm of the row entropy.
	EntropyEpsilon = 1e-8
	// VanishingTransform and ExplodingTransform bound a healthy average
	// transformation magnitude.
	VanishingTransform = 0.001
	ExplodingTransform = 1.0
	// UnderUtilisedSparsity and DiverseSparsity bound the average attention sparsity.
	UnderUtilisedSparsity = 0.8
	DiverseSparsity       = 0.2
	// PCARows is the largest number of rows used for PCA.
	PCARows = 5000
	// normEps is the +1e−8 of the layer-comparison normalisation.
	normEps = 1e-8
)

// Analysis is the result of the analyzer.
type Analysis struct {
	Layers    []LayerIO
	Transform []float64 // T_k = |out_mean_k − in_mean_k|
	// Pearson is r(in_means, out_means); HasPearson is false with fewer than 2 layers
	// or a constant series.
	Pearson    float64
	HasPearson bool

	// Per weight capture (layer) and head, on batch element 0: the mean row entropy
	// mean_i −Σ_j w_ij ln(w_ij + 1e−8) and the fraction of weights < 0.1.
	WeightNames  []string
	HeadEntropy  [][]float64
	HeadSparsity [][]float64
	// LayerSparsity is, per weight capture, the fraction of all its weights (every
	// batch element and head) below 0.1.
	LayerSparsity []float64
	// Received holds, for the first three weight captures, the attention each key
	// position receives: column sums of the weights averaged over batch and heads.
	Received [][]float64

	// HiddenNorm is, per layer with an Output, the mean L2 norm of its rows.
	HiddenNorm []float64
	// PCACumulative is the cumulative explained-variance ratio of all Outputs' rows
	// (subsampled to PCARows), nil without outputs.
	PCACumulative []float64
	// LayerComparison is layers × [in_mean, in_std, out_mean, out_std, T], each column
	// min–max normalised as (x − min)/(max − min + 1e−8).
	LayerComparison [][]float64

	Summary *CaptureSummary
}

// Analyze computes the analyzer's statistics. It needs at least one layer of inputs
// and outputs (the original refuses otherwise).
func Analyze(ctx context.Context, d AnalyzerData) (*Analysis, error) {
	if len(d.Layers) == 0 {
		return nil, errors.New("analyzer: no layer inputs and outputs captured")
	}
	a := &Analysis{Layers: d.Layers, Summary: d.Summary}
	in, out := make([]float64, len(d.Layers)), make([]float64, len(d.Layers))
	for k, l := range d.Layers {
		for _, v := range []float64{l.InMean, l.InStd, l.OutMean, l.OutStd} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("analyzer: layer %d (%s): statistic is %v", k, l.Name, v)
			}
		}
		in[k], out[k] = l.InMean, l.OutMean
		a.Transform = append(a.Transform, math.Abs(l.OutMean-l.InMean))
	}
	if len(in) > 1 {
		a.Pearson, a.HasPearson = pearson(in, out)
	}
	sums := d.Summaries
	if len(d.Weights) > 0 && len(sums) > 0 {
		return nil, errors.New("analyzer: give weights or their summaries, not both")
	}
	for wi := range d.Weights {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ws, err := SummarizeWeights(&d.Weights[wi])
		if err != nil {
			return nil, err
		}
		sums = append(sums, ws)
	}
	for wi, ws := range sums {
		a.WeightNames = append(a.WeightNames, ws.Name)
		a.HeadEntropy = append(a.HeadEntropy, ws.HeadEntropy)
		a.HeadSparsity = append(a.HeadSparsity, ws.HeadSparsity)
		a.LayerSparsity = append(a.LayerSparsity, ws.Sparsity)
		if wi < 3 {
			a.Received = append(a.Received, ws.Received)
		}
	}
	var rows []*tensor.Tensor
	for _, l := range d.Layers {
		if l.Output == nil {
			continue
		}
		if o := l.Output; len(o.Shape) != 2 || o.Shape[0] < 1 || o.Shape[1] < 1 || o.Check() != nil {
			return nil, fmt.Errorf("analyzer: output of %s: shape %v with %d values, [positions, width] expected", l.Name, o.Shape, len(o.Data))
		}
		a.HiddenNorm = append(a.HiddenNorm, meanRowNorm(l.Output))
		rows = append(rows, l.Output)
	}
	if len(rows) > 0 {
		cum, err := pcaCumulative(ctx, rows, d.Seed)
		if err != nil {
			return nil, err
		}
		a.PCACumulative = cum
	}
	a.LayerComparison = layerComparison(d.Layers, a.Transform)
	return a, nil
}

// HeadEntropySparsity returns the analyzer's per-head statistics of an n×n attention
// map w (seeds.md §3.3 item 6): the mean over rows of e_i = −Σ_j w_ij ln(w_ij + 1e−8)
// (analysis.EntropyAnalyzer), and the fraction of entries below 0.1 (analysis.Sparsity).
// (The original extends a list with the scalar mean and crashes; the intended value,
// the head's mean row entropy, is returned.)
func HeadEntropySparsity(w []float64, n int) (entropy, sparsity float64, err error) {
	t, err := tensor.FromFloat64([]int{1, 1, n, n}, w)
	if err != nil {
		return 0, 0, fmt.Errorf("analyzer: %w", err)
	}
	ws, err := SummarizeWeights(&LayerWeights{Weights: t})
	if err != nil {
		return 0, 0, err
	}
	return ws.HeadEntropy[0], ws.HeadSparsity[0], nil
}

func meanRowNorm(h *tensor.Tensor) float64 {
	rows, dim := h.Shape[0], h.Shape[1]
	s := 0.0
	for r := range rows {
		q := 0.0
		for _, x := range h.Data[r*dim : (r+1)*dim] {
			q += x * x
		}
		s += math.Sqrt(q)
	}
	return s / float64(rows)
}

// pearson returns Pearson's r of x and y (stats.Pearson), false when either is
// constant or there are fewer than two values.
func pearson(x, y []float64) (float64, bool) {
	r, err := stats.Pearson(x, y)
	if err != nil || math.IsNaN(r.Statistic) {
		return 0, false
	}
	return r.Statistic, true
}

// layerComparison builds the min–max normalised layers × 5 property matrix.
func layerComparison(layers []LayerIO, t []float64) [][]float64 {
	m := make([][]float64, len(layers))
	for k, l := range layers {
		m[k] = []float64{l.InMean, l.InStd, l.OutMean, l.OutStd, t[k]}
	}
	for c := range 5 {
		lo, hi := math.Inf(1), math.Inf(-1)
		for k := range m {
			lo, hi = math.Min(lo, m[k][c]), math.Max(hi, m[k][c])
		}
		for k := range m {
			m[k][c] = (m[k][c] - lo) / (hi - lo + normEps)
		}
	}
	return m
}

// pcaCumulative returns the cumulative explained-variance ratio of the principal
// components of the rows of all hidden matrices (which must share Dim), using a random
// subsample of PCARows rows (without replacement, seeded) when there are more.
func pcaCumulative(ctx context.Context, hs []*tensor.Tensor, seed uint64) ([]float64, error) {
	dim := hs[0].Shape[1]
	total := 0
	for _, h := range hs {
		if h.Shape[1] != dim {
			return nil, fmt.Errorf("analyzer: PCA: hidden sizes differ (%d and %d)", dim, h.Shape[1])
		}
		total += h.Shape[0]
	}
	idx := make([]int, total)
	for i := range idx {
		idx[i] = i
	}
	if total > PCARows {
		r := rand.New(rand.NewPCG(seed, 0x5ca1ab1e))
		r.Shuffle(total, func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		idx = idx[:PCARows]
		slices.Sort(idx)
	}
	if len(idx) < 2 {
		return nil, nil
	}
	x := mat.NewDense(len(idx), dim, nil)
	h, base := 0, 0
	for i, g := range idx {
		for g >= base+hs[h].Shape[0] {
			base += hs[h].Shape[0]
			h++
		}
		row := hs[h].Data[(g-base)*dim : (g-base+1)*dim]
		for j, v := range row {
			x.Set(i, j, v)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Centre the columns, then the covariance eigenvalues are the explained variances.
	n := float64(len(idx))
	for j := range dim {
		s := 0.0
		for i := range len(idx) {
			s += x.At(i, j)
		}
		m := s / n
		for i := range len(idx) {
			x.Set(i, j, x.At(i, j)-m)
		}
	}
	var cov mat.SymDense
	cov.SymOuterK(1/(n-1), x.T())
	var eig mat.EigenSym
	if !eig.Factorize(&cov, false) {
		return nil, errors.New("analyzer: PCA: eigen-decomposition did not converge")
	}
	vals := eig.Values(nil)
	slices.SortFunc(vals, func(a, b float64) int { return cmpDesc(a, b) })
	sum := 0.0
	for i, v := range vals {
		vals[i] = max(v, 0)
		sum += vals[i]
	}
	if sum == 0 {
		return nil, nil
	}
	// sklearn keeps min(n_samples, n_features) components.
	k := min(len(idx), dim)
	cum := make([]float64, k)
	acc := 0.0
	for i := range k {
		acc += vals[i] / sum
		cum[i] = acc
	}
	return cum, nil
}

func cmpDesc(a, b float64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}
