package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/attnscope/attnscope/analysis"
	"github.com/attnscope/attnscope/stats"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"

	"github.com/attnscope/attnscope/analysis/code"
	"github.com/attnscope/attnscope/viz"
)

// Head selections below 0 reduce the heads of a layer instead of picking one.
const (
	MeanHeads = -1 - iota
	SumHeads
	MaxHeads
	MinHeads
)

// HeadReduction returns the head selection of a reduction name (one of Reductions).
func HeadReduction(name string) (int, error) {
	if i := slices.Index(Reductions, name); i >= 0 {
		return -1 - i, nil
	}
	return 0, fmt.Errorf("reduction %q: one of %s expected", name, strings.Join(Reductions, ", "))
}

// gridThumb is the largest side kept per head for the all-heads grid (max-pooled), so
// a 12 × 12 grid of 512-token heads holds 144 small matrices, not 144 full ones.
const gridThumb = 160

// layerMatrix returns head h of a layer, or a reduction of its heads (h < 0:
// MeanHeads, SumHeads, MaxHeads, MinHeads), as a matrix.
func layerMatrix(a *tensor.Tensor, head int) (viz.Matrix, error) {
	if head < 0 {
		if -1-head >= len(Reductions) {
			return viz.Matrix{}, fmt.Errorf("head selection %d: no such reduction", head)
		}
		r, err := reduceAxis(a, 0, Reductions[-1-head])
		if err != nil {
			return viz.Matrix{}, err
		}
		return viz.NewMatrix(a.Shape[1], a.Shape[2], r.Data)
	}
	if head >= a.Shape[0] {
		return viz.Matrix{}, fmt.Errorf("head %d out of range: the layer has heads 0..%d", head, a.Shape[0]-1)
	}
	return headMatrix(a, head)
}

func headName(head int) string {
	if head < 0 && -1-head < len(Reductions) {
		return Reductions[-1-head] + " of heads"
	}
	return fmt.Sprintf("head %d", head)
}

// sampleMatrix reads a sample, one of its layers and that layer's head (or head mean)
// as a matrix.
func sampleMatrix(ctx context.Context, run Run, id string, layer, head int) (*store.Sample, *tensor.Tensor, viz.Matrix, error) {
	s, err := run.Sample(id)
	if err != nil {
		return nil, nil, viz.Matrix{}, err
	}
	a, err := loadLayer(ctx, run, id, layer)
	if err != nil {
		return nil, nil, viz.Matrix{}, err
	}
	m, err := layerMatrix(a, head)
	if err != nil {
		return nil, nil, viz.Matrix{}, err
	}
	return s, a, m, nil
}

// AttentionMatrix returns one layer's head (or reduction of heads, head < 0) of a
// sample's attention as a matrix.
func AttentionMatrix(ctx context.Context, run Run, id string, layer, head int) (viz.Matrix, error) {
	_, _, m, err := sampleMatrix(ctx, run, id, layer, head)
	return m, err
}

// tokenLabels returns the sample's tokens for an axis of n positions (nil, i.e.
// numbered positions, when the counts disagree, e.g. attention imported without
// tokens).
func tokenLabels(s *store.Sample, n int) []string {
	if len(s.Tokens) >= n {
		return s.Tokens[:n]
	}
	return nil
}

// HeatmapFigure draws the token × token attention of one layer and head (or the head
// mean) of a sample, with the prompt block outlined for generations.
//
// A long --store qk sample (LongSample) is drawn max-pooled to at most PoolSide ×
// PoolSide blocks, computed row block by row block.
func HeatmapFigure(ctx context.Context, run Run, id string, layer, head int, clip float64) (*viz.Figure, error) {
	if s, err := run.Sample(id); err == nil && LongSample(s) {
		return longHeatmap(ctx, run, s, id, layer, head, clip)
	}
	s, a, m, err := sampleMatrix(ctx, run, id, layer, head)
	if err != nil {
		return nil, err
	}
	o := viz.HeatmapOptions{
		Title:          fmt.Sprintf("%s: layer %d, %s", id, layer, headName(head)),
		RowLabels:      tokenLabels(s, a.Shape[1]),
		ColLabels:      tokenLabels(s, a.Shape[2]),
		ClipPercentile: clip,
	}
	if s.PromptLen > 0 && s.PromptLen < min(a.Shape[1], a.Shape[2]) {
		o.PromptLen = s.PromptLen
	}
	return viz.Heatmap(m, o)
}

// GridFigure draws every layer and head of a sample as thumbnails, reading one layer
// at a time (a long --store qk sample row block by row block).
func GridFigure(ctx context.Context, run Run, id string, clip float64) (*viz.Figure, error) {
	if s, err := run.Sample(id); err == nil && LongSample(s) {
		return longGrid(ctx, run, s, id, clip)
	}
	n, err := layerCount(ctx, run, id)
	if err != nil {
		return nil, err
	}
	var units [][]viz.Matrix
	for l := range n {
		a, err := loadLayer(ctx, run, id, l)
		if err != nil {
			return nil, err
		}
		if len(units) > 0 && a.Shape[0] != len(units[0]) {
			return nil, fmt.Errorf("sample %s: layer %d has %d heads, layer 0 has %d", id, l, a.Shape[0], len(units[0]))
		}
		row := make([]viz.Matrix, a.Shape[0])
		for h := range a.Shape[0] {
			m, _ := viz.NewMatrix(a.Shape[1], a.Shape[2], a.Sub(h).Data)
			row[h] = viz.Downsample(m, gridThumb)
		}
		units = append(units, row)
	}
	return viz.Grid(units, viz.GridOptions{Title: fmt.Sprintf("%s: all heads (rows: layers, columns: heads)", id), ClipPercentile: clip})
}

// ReceivedFigure draws the attention each key position receives in one layer (column
// sums of the head or head-mean matrix, seeds.md §3.3 panel 10).
//
// A long --store qk sample's column sums are accumulated row block by row block and
// its keys averaged over blocks (at most PoolSide bars).
func ReceivedFigure(ctx context.Context, run Run, id string, layer, head int) (*viz.Figure, error) {
	if s, err := run.Sample(id); err == nil && LongSample(s) {
		return longReceived(ctx, run, id, layer, head)
	}
	s, _, m, err := sampleMatrix(ctx, run, id, layer, head)
	if err != nil {
		return nil, err
	}
	col := make([]float64, m.Cols)
	for i := range m.Rows {
		for j := range m.Cols {
			col[j] += m.At(i, j)
		}
	}
	return viz.Received(col, tokenLabels(s, m.Cols), fmt.Sprintf("%s: attention received, layer %d, %s", id, layer, headName(head)))
}

// RowStats returns, for every layer, head and query row of a sample, the row's entropy
// H = −Σ_j ã_j ln ã_j with ã = a + 1e−10 and its maximum weight (the Text_to_Python
// notebook's aggregate analysis, seeds.md §5.4, analysis.EntropyShifted, applied to each
// attention row), reading one layer at a time (a long --store qk sample one row
// block at a time).
func RowStats(ctx context.Context, run Run, id string) (entropy, maxWeight []float64, err error) {
	if s, err := run.Sample(id); err == nil && LongSample(s) {
		return longRowStats(ctx, run, id)
	}
	n, err := layerCount(ctx, run, id)
	if err != nil {
		return nil, nil, err
	}
	for l := range n {
		a, err := loadLayer(ctx, run, id, l)
		if err != nil {
			return nil, nil, err
		}
		if a.Shape[1] != a.Shape[2] {
			return nil, nil, fmt.Errorf("sample %s layer %d: attention is %d×%d, square maps expected", id, l, a.Shape[1], a.Shape[2])
		}
		t := &tensor.Tensor{Shape: append([]int{1}, a.Shape...), Data: a.Data}
		rs, err := analysis.Rows(t, analysis.EntropyShifted)
		if err != nil {
			return nil, nil, fmt.Errorf("sample %s layer %d: %w", id, l, err)
		}
		entropy = append(entropy, rs.Entropy.Data...)
		maxWeight = append(maxWeight, rs.MaxWeight.Data...)
	}
	return entropy, maxWeight, nil
}

// EntropyFigure draws the histograms of row entropy and maximum weight with their
// means (attention_entropy_analysis.png of seeds.md §5.4).
func EntropyFigure(ctx context.Context, run Run, id string) (*viz.Figure, error) {
	e, m, err := RowStats(ctx, run, id)
	if err != nil {
		return nil, err
	}
	return viz.Histograms(entropyPanels(e, m), fmt.Sprintf("%s: every attention row of every layer and head", id))
}

// CodeQuery selects the attention rows of a code heatmap: one query position, or
// every position whose token text is Tokens (e.g. "):"), averaged. The zero value
// (Query −1, no Tokens) is the last prompt token, the query that predicts the first
// generated token.
type CodeQuery struct {
	Query  int    // query position; < 0 for the default
	Tokens string // match tokens with this text (surrounding whitespace ignored)
}

// CodeWeights returns the per-character weights of a sample's prompt text for the
// attention of the rows chosen by q in one layer (the last when layer < 0), averaged
// over heads, spread over characters by the tokens' offsets (followup-attention's
// visualize_code_heatmap_codegen; analysis/code.CharWeightsFromOffsets). Only the
// prompt is coloured, as in the original.
func CodeWeights(ctx context.Context, run Run, id string, layer int, q CodeQuery, dist code.Distribution) (*store.Sample, []float64, string, error) {
	s, err := run.Sample(id)
	if err != nil {
		return nil, nil, "", err
	}
	if s.Text == "" || len(s.Offsets) == 0 {
		return nil, nil, "", fmt.Errorf("sample %s has no text with token offsets; a code heatmap needs them", id)
	}
	n, err := run.NumLayers(id)
	if err != nil {
		return nil, nil, "", err
	}
	if layer < 0 {
		layer = n - 1
	}
	queries, keys := 0, 0
	var a *tensor.Tensor
	if LongSample(s) { // only the chosen rows are computed, below
		queries, keys = s.QK.Tokens, s.QK.Tokens
	} else {
		if a, err = loadLayer(ctx, run, id, layer); err != nil {
			return nil, nil, "", err
		}
		queries, keys = a.Shape[1], a.Shape[2]
	}
	prompt := s.PromptLen
	if prompt <= 0 || prompt > keys {
		prompt = min(keys, len(s.Offsets))
	}
	prompt = min(prompt, len(s.Offsets))
	runes := []rune(s.Text)
	tokText := func(i int) string {
		o := s.Offsets[i]
		if o[0] < 0 || o[1] > len(runes) || o[0] > o[1] {
			return ""
		}
		return string(runes[o[0]:o[1]])
	}
	var rows []int
	var what string
	switch {
	case q.Tokens != "":
		want := strings.TrimSpace(q.Tokens)
		for i := 0; i < min(queries, len(s.Offsets)); i++ {
			if strings.TrimSpace(tokText(i)) == want {
				rows = append(rows, i)
			}
		}
		if len(rows) == 0 {
			return nil, nil, "", fmt.Errorf("sample %s has no token %q", id, q.Tokens)
		}
		what = fmt.Sprintf("the %d token(s) %q", len(rows), want)
	default:
		query := q.Query
		if query < 0 {
			query = prompt - 1
		}
		if query >= queries {
			return nil, nil, "", fmt.Errorf("query %d out of range: sample %s has query rows 0..%d", query, id, queries-1)
		}
		rows = []int{query}
		what = fmt.Sprintf("token %d", query)
		if query < len(s.Tokens) {
			what = fmt.Sprintf("token %d %s", query, viz.TokenLabel(s.Tokens[query]))
		}
	}
	w := make([]float64, prompt)
	if a == nil {
		means, err := longRowsMean(run, id, layer, rows)
		if err != nil {
			return nil, nil, "", err
		}
		for _, m := range means {
			for j := range prompt {
				w[j] += m[j] / float64(len(rows))
			}
		}
	} else {
		mean := headMean(a)
		for _, r := range rows {
			for j := range prompt {
				w[j] += mean[r*keys+j] / float64(len(rows))
			}
		}
	}
	// Only the prompt is shown (and coloured), as in the original: a generation's
	// text is cut at the end of its prompt.
	nChars := len(runes)
	if pr := []rune(s.PromptText); s.PromptLen > 0 && len(pr) > 0 && len(pr) <= nChars && strings.HasPrefix(s.Text, s.PromptText) {
		nChars = len(pr)
		for i := range prompt {
			if s.Offsets[i][1] > nChars {
				nChars = len(runes) // offsets reach past the prompt text: keep it all
				break
			}
		}
	}
	chars, err := code.CharWeightsFromOffsets(s.Offsets[:prompt], w, nChars, dist)
	if err != nil {
		return nil, nil, "", fmt.Errorf("sample %s: %w", id, err)
	}
	if nChars < len(runes) {
		cp := *s
		cp.Text = string(runes[:nChars])
		s = &cp
	}
	title := fmt.Sprintf("%s: attention of %s over the prompt, layer %d, mean of heads", id, what, layer)
	return s, chars, title, nil
}

// CodeFigure draws the code heatmap of CodeWeights.
func CodeFigure(ctx context.Context, run Run, id string, layer int, q CodeQuery, dist code.Distribution, clip float64) (*viz.Figure, error) {
	s, w, title, err := CodeWeights(ctx, run, id, layer, q, dist)
	if err != nil {
		return nil, err
	}
	return viz.CodeHeatmap(s.Text, w, viz.CodeOptions{Title: title, ClipPercentile: clip})
}

// CodeWeightsFigure draws the character weights of CodeFigure (before any clipping)
// sorted against linspace(0, 1, n, endpoint=False), seeds.md §1.9's
// "cumulative distribution" line.
func CodeWeightsFigure(ctx context.Context, run Run, id string, layer int, q CodeQuery, dist code.Distribution) (*viz.Figure, error) {
	_, w, title, err := CodeWeights(ctx, run, id, layer, q, dist)
	if err != nil {
		return nil, err
	}
	return viz.SortedWeights(w, title+": sorted character weights")
}

// SampleAnalyzerData assembles the §3.3 analyzer's input from a sample: layer k's
// input is the residual stream entering block k ("embed" for k = 0, else
// blocks.<k−1>.hook_resid_post) and its output blocks.<k>.hook_resid_post; mean and std
// (unbiased, as torch's Tensor.std) over the whole tensor; weights are the layer's
// attention as a batch of one, summarised as each layer is read (one layer of
// attention in memory at a time).
func SampleAnalyzerData(ctx context.Context, run Run, id string) (AnalyzerData, error) {
	var d AnalyzerData
	n, err := layerCount(ctx, run, id)
	if err != nil {
		return d, err
	}
	prev, err := run.Hidden(id, "embed")
	if err != nil {
		if errors.Is(err, ErrNotCaptured) {
			return d, fmt.Errorf("sample %s: the dashboard needs hidden states (capture with --hidden): %w", id, err)
		}
		return d, err
	}
	d.Summary = &CaptureSummary{NumLayers: n, TotalCaptures: n}
	for l := range n {
		name := fmt.Sprintf("blocks.%d.attn", l)
		out, err := run.Hidden(id, fmt.Sprintf("blocks.%d.hook_resid_post", l))
		if err != nil {
			return d, err
		}
		im, is := stats.Mean(prev.Data), math.Sqrt(stats.Variance(prev.Data))
		om, os := stats.Mean(out.Data), math.Sqrt(stats.Variance(out.Data))
		d.Layers = append(d.Layers, LayerIO{Name: name, InMean: im, InStd: is, OutMean: om, OutStd: os, Output: out})
		a, err := loadLayer(ctx, run, id, l)
		if err != nil {
			return d, err
		}
		if a.Shape[1] != a.Shape[2] {
			return d, fmt.Errorf("sample %s layer %d: attention is %d×%d, the analyzer needs square maps", id, l, a.Shape[1], a.Shape[2])
		}
		ws, err := SummarizeWeights(&LayerWeights{Name: name, Weights: &tensor.Tensor{Shape: append([]int{1}, a.Shape...), Data: a.Data}})
		if err != nil {
			return d, err
		}
		d.Summaries = append(d.Summaries, ws) // the layer's weights are dropped here
		d.Summary.UniqueLayers = append(d.Summary.UniqueLayers, name)
		prev = out
	}
	return d, nil
}

// DashboardData converts an analysis into the dashboard's series.
func (a *Analysis) DashboardData(title string) viz.DashboardData {
	d := viz.DashboardData{Title: title, Pearson: a.Pearson, HasPearson: a.HasPearson,
		Transform: a.Transform, HeadEntropy: a.HeadEntropy, HeadSparsity: a.HeadSparsity,
		HiddenNorm: a.HiddenNorm, PCACumulative: a.PCACumulative, LayerComparison: a.LayerComparison,
		Received: a.Received}
	for _, l := range a.Layers {
		d.LayerNames = append(d.LayerNames, shortLayer(l.Name))
		d.InMean = append(d.InMean, l.InMean)
		d.OutMean = append(d.OutMean, l.OutMean)
		d.InStd = append(d.InStd, l.InStd)
		d.OutStd = append(d.OutStd, l.OutStd)
	}
	for _, n := range a.WeightNames {
		d.WeightNames = append(d.WeightNames, shortLayer(n))
	}
	for _, m := range a.SummaryMetrics() {
		d.SummaryNames = append(d.SummaryNames, m.Name)
		d.SummaryValues = append(d.SummaryValues, m.Value)
	}
	return d
}

// shortLayer names a layer for an axis: "blocks.3.attn" → "L3"; other names keep
// their last component.
func shortLayer(name string) string {
	var l int
	if _, err := fmt.Sscanf(name, "blocks.%d.attn", &l); err == nil {
		return fmt.Sprintf("L%d", l)
	}
	return lastComponent(name)
}

// GraphFigure draws the layer-by-layer attention graph of a sample (top-k targets of
// every token in each layer's head-mean, or one head's, attention).
func GraphFigure(ctx context.Context, run Run, id string, head, topK int) (*viz.Figure, error) {
	s, err := run.Sample(id)
	if err != nil {
		return nil, err
	}
	n, err := layerCount(ctx, run, id)
	if err != nil {
		return nil, err
	}
	var layers []viz.Matrix
	for l := range n {
		a, err := loadLayer(ctx, run, id, l)
		if err != nil {
			return nil, err
		}
		m, err := layerMatrix(a, head)
		if err != nil {
			return nil, err
		}
		layers = append(layers, m)
	}
	return viz.AttentionGraph(layers, tokenLabels(s, layers[0].Rows), topK,
		fmt.Sprintf("%s: attention graph, %s, top %d targets per token", id, headName(head), topK))
}

// DerivedGraphFigure draws the graph of a derive pass's output whose axes are
// [layer or layer pair, query, key] (e.g. follow-up attention per layer pair, drawn
// side by side with the attention graph).
func DerivedGraphFigure(pass store.PassInfo, t *tensor.Tensor, tokens []string, id string, topK int) (*viz.Figure, error) {
	ax := pass.Axes
	if len(ax) != 3 || (ax[0].Name != store.AxisLayer && ax[0].Name != store.AxisLayerPair) || ax[1].Name != store.AxisQuery || ax[2].Name != store.AxisKey || store.CheckAxes(ax, t.Shape) != nil {
		return nil, fmt.Errorf("pass %s, sample %s: output with axes %s, [layer, query, key] expected for a graph", pass.Name, id, store.AxesString(ax))
	}
	var layers []viz.Matrix
	for l := range t.Shape[0] {
		m, err := viz.NewMatrix(t.Shape[1], t.Shape[2], t.Sub(l).Data)
		if err != nil {
			return nil, err
		}
		layers = append(layers, m)
	}
	if len(tokens) < t.Shape[1] {
		tokens = nil
	} else {
		tokens = tokens[:t.Shape[1]]
	}
	return viz.AttentionGraph(layers, tokens, topK, fmt.Sprintf("%s: %s graph, top %d targets per token", id, pass.Name, topK))
}

// attentionTensor reads every layer of a sample into one [L, H, N, N] tensor (for the
// analyses that compare all layers and heads with each other); refused for a long
// --store qk sample.
func attentionTensor(ctx context.Context, run Run, id string) (*analysis.Tensor, error) {
	if s, err := run.Sample(id); err == nil && LongSample(s) {
		return nil, errWhole(s, id, "comparing every layer and head")
	}
	n, err := layerCount(ctx, run, id)
	if err != nil {
		return nil, err
	}
	var data []float64
	var H, N int
	for l := range n {
		a, err := loadLayer(ctx, run, id, l)
		if err != nil {
			return nil, err
		}
		if a.Shape[1] != a.Shape[2] || (l > 0 && (a.Shape[0] != H || a.Shape[1] != N)) {
			return nil, fmt.Errorf("sample %s layer %d: attention [%d, %d, %d] differs from layer 0 or is not square", id, l, a.Shape[0], a.Shape[1], a.Shape[2])
		}
		H, N = a.Shape[0], a.Shape[1]
		data = append(data, a.Data...)
	}
	return tensor.FromFloat64([]int{n, H, N, N}, data)
}

// JSFigure draws the Jensen–Shannon distance between all (layer, head) units
// (analysis.UnitJSD) or, with byLayer, between layers on head-averaged rows
// (analysis.LayerJSD).
func JSFigure(ctx context.Context, run Run, id string, byLayer bool) (*viz.Figure, error) {
	t, err := attentionTensor(ctx, run, id)
	if err != nil {
		return nil, err
	}
	L, H := t.Shape[0], t.Shape[1]
	var d *analysis.Tensor
	what := "units (layer, head)"
	if byLayer {
		d, err = analysis.LayerJSD(t)
		what = "layers (mean of heads)"
	} else {
		d, err = analysis.UnitJSD(t)
	}
	if err != nil {
		return nil, fmt.Errorf("sample %s: %w", id, err)
	}
	n := d.Shape[0]
	m, err := viz.NewMatrix(n, n, d.Data)
	if err != nil {
		return nil, err
	}
	labels := UnitLabels(n, L, H)
	return viz.Heatmap(m, viz.HeatmapOptions{
		Title: fmt.Sprintf("%s: Jensen–Shannon distance between %s", id, what), XLabel: "unit", YLabel: "unit",
		RowLabels: labels, ColLabels: labels, Colormap: viz.Viridis, ColorbarLabel: "Jensen–Shannon distance",
	})
}

// CrispinessFigure draws each head's mean crispiness curve (analysis.HeadCrispiness;
// the cumulative-mass variant with mass).
func CrispinessFigure(ctx context.Context, run Run, id string, mass bool) (*viz.Figure, error) {
	t, err := attentionTensor(ctx, run, id)
	if err != nil {
		return nil, err
	}
	c, err := analysis.HeadCrispiness(t, mass)
	if err != nil {
		return nil, fmt.Errorf("sample %s: %w", id, err)
	}
	ctx2 := AxisContext{Layers: c.Shape[0], Heads: c.Shape[1]}
	v, err := NewDerivedView(store.PassInfo{Name: "crispiness", PassSettings: store.PassSettings{Axes: []store.Axis{{Name: store.AxisLayer}, {Name: store.AxisHead}, {Name: store.AxisPoint}}}}, id, c, ctx2, DefaultSelection)
	if err != nil {
		return nil, err
	}
	series := v.Series
	y := "weight at the rank percentile"
	if mass {
		y = "cumulative attention mass"
	}
	return viz.Curves(series, viz.CurvesOptions{Title: fmt.Sprintf("%s: crispiness of every head", id), XLabel: "fraction of keys (sorted by weight)", YLabel: y})
}
