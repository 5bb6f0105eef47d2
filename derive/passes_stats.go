package derive

import (
	"context"
	"math"

	"github.com/attnscope/attnscope/analysis"
	"github.com/attnscope/attnscope/tensor"
)

// Scalar statistics of attention (spec §1.10, §3.3, §3.4): each pass writes its tensor
// and adds its scalars to the run's metrics table.

// headRows reports a per-head statistic [L,H] as rows (l,h).
func headRows(name string, heads *tensor.Tensor) []Metric {
	L, H := heads.Shape[0], heads.Shape[1]
	out := make([]Metric, 0, L*H)
	for l := 0; l < L; l++ {
		for h := 0; h < H; h++ {
			out = append(out, Metric{Layer: l, Head: h, Name: name, Value: heads.Data[l*H+h]})
		}
	}
	return out
}

// summarizeHeads turns the per-head rows (l,h) of a statistic gathered over every layer
// into headLayerMetrics' rows.
func summarizeHeads(name string) func([]Metric) []Metric {
	return func(rows []Metric) []Metric {
		L, H := 0, 0
		for _, m := range rows {
			L, H = max(L, m.Layer+1), max(H, m.Head+1)
		}
		heads := analysis.New(L, H)
		for _, m := range rows {
			heads.Data[m.Layer*H+m.Head] = m.Value
		}
		return headLayerMetrics(name, heads)
	}
}

// headLayerMetrics reports a per-head statistic [L,H] as rows (l,h), its layer means
// as (l,-1) and its overall mean as (-1,-1). A head whose statistic is undefined (NaN,
// e.g. a rank correlation against a constant) is left out of the means, as pandas'
// mean skips NaN; a mean over no defined head is NaN.
func headLayerMetrics(name string, heads *tensor.Tensor) []Metric {
	L, H := heads.Shape[0], heads.Shape[1]
	var out []Metric
	var all float64
	var nAll int
	for l := 0; l < L; l++ {
		var layer float64
		var n int
		for h := 0; h < H; h++ {
			v := heads.Data[l*H+h]
			out = append(out, Metric{Layer: l, Head: h, Name: name, Value: v})
			if !math.IsNaN(v) {
				layer += v
				n++
			}
		}
		out = append(out, Metric{Layer: l, Head: -1, Name: name, Value: meanOf(layer, n)})
		all += layer
		nAll += n
	}
	return append(out, Metric{Layer: -1, Head: -1, Name: name, Value: meanOf(all, nAll)})
}

// meanOf is sum/n, NaN when n is 0.
func meanOf(sum float64, n int) float64 {
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

// offDiagonalMean is the mean of the off-diagonal entries of a square matrix.
func offDiagonalMean(m *tensor.Tensor) float64 {
	n := m.Shape[0]
	if n < 2 {
		return 0
	}
	var s float64
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			if i != j {
				s += m.Data[i*n+j]
			}
		}
	}
	return s / float64(n*(n-1))
}

func statsSpecs() []Spec {
	conventions := []string{string(analysis.EntropyExact), string(analysis.EntropyAnalyzer), string(analysis.EntropyShifted)}
	return []Spec{
		{
			Name: "attention_entropy", Doc: "entropy of every attention row, [L,H,N]; metrics: mean per head, layer and overall", Input: TakesAttention,
			Layers: EachLayer, Summarize: summarizeHeads("entropy"), Stream: streamEntropy(),
			Kwargs: map[string]KwargSpec{"convention": {Kind: KwString, Default: string(analysis.EntropyExact), Enum: conventions,
				Doc: "exact (rows normalised, 0 ln 0 = 0), analyzer (−Σ w ln(w+1e−8)) or shifted (a+1e−10)"}},
			Fn: func(_ context.Context, in *Input, kw Kwargs) (*Result, error) {
				rs, err := analysis.Rows(in.Tensor, analysis.EntropyConvention(kw.String("convention")))
				if err != nil {
					return nil, err
				}
				return &Result{Tensor: rs.Entropy, Metrics: headRows("entropy", analysis.HeadMeans(rs.Entropy, rs.Valid))}, nil
			},
		},
		{
			Name: "attention_max_weight", Doc: "largest weight of every attention row, [L,H,N]; metrics: mean per head, layer and overall", Input: TakesAttention,
			Layers: EachLayer, Summarize: summarizeHeads("max_weight"), Stream: streamMaxWeight(),
			Fn: func(_ context.Context, in *Input, _ Kwargs) (*Result, error) {
				rs, err := analysis.Rows(in.Tensor, analysis.EntropyExact)
				if err != nil {
					return nil, err
				}
				return &Result{Tensor: rs.MaxWeight, Metrics: headRows("max_weight", analysis.HeadMeans(rs.MaxWeight, nil))}, nil
			},
		},
		{
			Name: "attention_sparsity", Doc: "fraction of each head's weights below a threshold, [L,H]; metrics per head, layer and overall", Input: TakesAttention,
			Layers: EachLayer, Summarize: summarizeHeads("sparsity"),
			Kwargs: map[string]KwargSpec{"threshold": {Kind: KwFloat, Default: analysis.DefaultSparsityThreshold}},
			Fn: func(_ context.Context, in *Input, kw Kwargs) (*Result, error) {
				s, err := analysis.Sparsity(in.Tensor, kw.Float("threshold"))
				if err != nil {
					return nil, err
				}
				return &Result{Tensor: s, Metrics: headRows("sparsity", s)}, nil
			},
		},
		withStream(eachLayer(attn("attention_received", "attention each key position receives, column sums of the head-mean matrix, [L,N]", false, analysis.Received)), streamReceived()),
		{
			Name: "js_distance_units", Doc: "mean row Jensen-Shannon distance between all (layer, head) units, [L·H,L·H]; metric: its off-diagonal mean", Input: TakesAttention,
			Layers: Streamed, // two layers in memory at a time
			Fn: func(ctx context.Context, in *Input, _ Kwargs) (*Result, error) {
				var d *tensor.Tensor
				var err error
				if in.Tensor != nil {
					d, err = analysis.UnitJSDContext(ctx, in.Tensor)
				} else {
					d, err = analysis.UnitJSDLayers(ctx, in.NumLayers, layerFunc(in))
				}
				if err != nil {
					return nil, err
				}
				return &Result{Tensor: d, Metrics: []Metric{{Layer: -1, Head: -1, Name: "unit_js_mean", Value: offDiagonalMean(d)}}}, nil
			},
		},
		{
			Name: "js_distance_layers", Doc: "mean row Jensen-Shannon distance between layers (head-mean rows), [L,L]; metric: its off-diagonal mean", Input: TakesAttention,
			Layers: HeadReduced, Heads: fixedHeads(analysis.HeadMean),
			Fn: func(_ context.Context, in *Input, _ Kwargs) (*Result, error) {
				d, err := analysis.LayerJSD(in.Tensor)
				if err != nil {
					return nil, err
				}
				return &Result{Tensor: d, Metrics: []Metric{{Layer: -1, Head: -1, Name: "layer_js_mean", Value: offDiagonalMean(d)}}}, nil
			},
		},
		{
			Name: "crispiness", Doc: "100-point crispiness curve per head (mean over rows), [L,H,100]", Input: TakesAttention, Layers: EachLayer,
			Kwargs: map[string]KwargSpec{"mode": {Kind: KwString, Default: "sorted", Enum: []string{"sorted", "cumulative"},
				Doc: "sorted weight at each rank percentile, or cumulative mass"}},
			Fn: func(_ context.Context, in *Input, kw Kwargs) (*Result, error) {
				return wrap(analysis.HeadCrispiness(in.Tensor, kw.String("mode") == "cumulative"))
			},
		},
		{
			Name: "head_diversity", Doc: "mean JS distance between the heads of each layer, [L]; metrics per layer", Input: TakesAttention, Layers: EachLayer,
			Fn: func(_ context.Context, in *Input, _ Kwargs) (*Result, error) {
				d, err := analysis.HeadDiversity(in.Tensor)
				if err != nil {
					return nil, err
				}
				res := &Result{Tensor: d}
				for l, v := range d.Data {
					res.Metrics = append(res.Metrics, Metric{Layer: l, Head: -1, Name: "head_diversity", Value: v})
				}
				return res, nil
			},
		},
		{
			Name: "head_redundancy", Doc: "head pairs of a layer with mean row JS distance below tau, [pairs,4] = (layer, head1, head2, distance); metric: pairs per layer", Input: TakesAttention,
			Layers: EachLayer,
			Kwargs: map[string]KwargSpec{"tau": {Kind: KwFloat, Default: analysis.DefaultRedundancyTau}},
			Fn: func(_ context.Context, in *Input, kw Kwargs) (*Result, error) {
				pairs, err := analysis.RedundantHeads(in.Tensor, kw.Float("tau"))
				if err != nil {
					return nil, err
				}
				out := tensor.New(len(pairs), 4)
				count := make([]float64, in.Tensor.Shape[0])
				for k, p := range pairs {
					copy(out.Data[4*k:], []float64{float64(in.FirstLayer + p.Layer), float64(p.Head1), float64(p.Head2), p.Distance})
					count[p.Layer]++
				}
				res := &Result{Tensor: out}
				for l, c := range count {
					res.Metrics = append(res.Metrics, Metric{Layer: l, Head: -1, Name: "redundant_pairs", Value: c})
				}
				return res, nil
			},
		},
		{
			Name: "head_collapse", Doc: "collapse criteria per head, [L,H,4] = (normalised entropy, row JS, uniform, rank collapse); metrics per head", Input: TakesAttention,
			Layers: EachLayer,
			Kwargs: map[string]KwargSpec{
				"uniform_threshold":   {Kind: KwFloat, Default: analysis.DefaultUniformThreshold, Doc: "uniform collapse above this mean normalised entropy"},
				"rank_collapse_below": {Kind: KwFloat, Default: analysis.DefaultRankCollapseBelow, Doc: "rank collapse below this mean row JS distance"},
			},
			Fn: func(ctx context.Context, in *Input, kw Kwargs) (*Result, error) {
				hc, err := analysis.CollapseContext(ctx, in.Tensor, analysis.CollapseOptions{
					UniformThreshold: kw.Float("uniform_threshold"), RankCollapseBelow: kw.Float("rank_collapse_below")})
				if err != nil {
					return nil, err
				}
				L, H := in.Tensor.Shape[0], in.Tensor.Shape[1]
				out := tensor.New(L, H, 4)
				res := &Result{Tensor: out}
				b := func(x bool) float64 {
					if x {
						return 1
					}
					return 0
				}
				for _, c := range hc {
					v := []float64{c.NormEntropy, c.RowJS, b(c.Uniform), b(c.RankCollapse)}
					copy(out.Data[(c.Layer*H+c.Head)*4:], v)
					for k, name := range []string{"norm_entropy", "row_js", "uniform_collapse", "rank_collapse"} {
						res.Metrics = append(res.Metrics, Metric{Layer: c.Layer, Head: c.Head, Name: name, Value: v[k]})
					}
				}
				return res, nil
			},
		},
	}
}

func withStream(s Spec, r *RowStream) Spec { s.Stream = r; return s }
