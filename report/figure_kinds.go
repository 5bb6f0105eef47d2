package report

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/stats"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
	"github.com/attnscope/attnscope/viz"
)

// The draw functions of the figure kinds (registry.go).

func drawn(f *viz.Figure, err error) (*Drawing, error) {
	if err != nil {
		return nil, err
	}
	return &Drawing{Figure: f}, nil
}

// layerOf returns o.Layer, or the sample's last layer when it is < 0.
func layerOf(ctx context.Context, run Run, id string, o FigureOptions) (int, error) {
	if o.Layer >= 0 {
		return o.Layer, nil
	}
	n, err := layerCount(ctx, run, id)
	if err != nil {
		return 0, err
	}
	return n - 1, nil
}

func drawGrid(ctx context.Context, run Run, id string, o FigureOptions) (*Drawing, error) {
	if o.windowed() {
		return drawn(WindowGridFigure(ctx, run, id, o.Rows, o.Cols, o.Clip))
	}
	return drawn(GridFigure(ctx, run, id, o.Clip))
}

func drawHeatmap(ctx context.Context, run Run, id string, o FigureOptions) (*Drawing, error) {
	layer, err := layerOf(ctx, run, id, o)
	if err != nil {
		return nil, err
	}
	if o.windowed() {
		return drawn(WindowHeatmapFigure(ctx, run, id, layer, o.Head, o.Rows, o.Cols, o.Clip))
	}
	return drawn(HeatmapFigure(ctx, run, id, layer, o.Head, o.Clip))
}

func drawReceived(ctx context.Context, run Run, id string, o FigureOptions) (*Drawing, error) {
	layer, err := layerOf(ctx, run, id, o)
	if err != nil {
		return nil, err
	}
	return drawn(ReceivedFigure(ctx, run, id, layer, o.Head))
}

func drawEntropy(ctx context.Context, run Run, id string, o FigureOptions) (*Drawing, error) {
	return drawn(EntropyFigure(ctx, run, id))
}

func drawJS(ctx context.Context, run Run, id string, o FigureOptions) (*Drawing, error) {
	return drawn(JSFigure(ctx, run, id, o.ByLayer))
}

func drawCrispiness(ctx context.Context, run Run, id string, o FigureOptions) (*Drawing, error) {
	return drawn(CrispinessFigure(ctx, run, id, o.Mass))
}

func drawAlignment(ctx context.Context, run Run, id string, o FigureOptions) (*Drawing, error) {
	layer, err := layerOf(ctx, run, id, o)
	if err != nil {
		return nil, err
	}
	return drawn(AlignmentFigure(ctx, run, id, layer, o.Head))
}

// drawAlignmentEntropy draws the row-entropy and maximum-weight histograms over the
// generated × prompt alignments of every sample of the run (only o.Sample's when
// given), as Text_to_Python's aggregate analysis does over its test set.
func drawAlignmentEntropy(ctx context.Context, run Run, id string, o FigureOptions) (*Drawing, error) {
	layer, err := layerOf(ctx, run, id, o)
	if err != nil {
		return nil, err
	}
	ids := []string{id}
	if o.Sample == "" {
		if ids, err = run.Samples(); err != nil {
			return nil, err
		}
	}
	ms := make([]viz.Matrix, 0, len(ids))
	for _, id := range ids {
		m, _, _, err := GenerationAlignment(ctx, run, id, layer, o.Head)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return drawn(AlignmentEntropyFigure(ms, fmt.Sprintf("Attention over the alignments of %d samples (layer %d)", len(ms), layer)))
}

// drawAlignmentFiles draws o.Attention (one matrix) with o.SourceTokens and
// o.TargetTokens.
func drawAlignmentFiles(o FigureOptions) (*Drawing, error) {
	if len(o.Attention) != 1 {
		return nil, optionErrorf("alignment draws one --attention file, got %d", len(o.Attention))
	}
	if o.SourceTokens == "" || o.TargetTokens == "" {
		return nil, optionErrorf("alignment with --attention needs --source-tokens FILE and --target-tokens FILE")
	}
	m, err := ReadAlignmentFile(o.Attention[0])
	if err != nil {
		return nil, err
	}
	src, err := ReadTokensFile(o.SourceTokens)
	if err != nil {
		return nil, err
	}
	trg, err := ReadTokensFile(o.TargetTokens)
	if err != nil {
		return nil, err
	}
	if !o.Crop {
		if len(src) != m.Cols {
			return nil, fmt.Errorf("%s: %d source tokens for the %d columns of %s (%d×%d); pass --crop to draw the first min(tokens, columns, 30) as plot_attention does", o.SourceTokens, len(src), m.Cols, o.Attention[0], m.Rows, m.Cols)
		}
		if len(trg) != m.Rows {
			return nil, fmt.Errorf("%s: %d target tokens for the %d rows of %s (%d×%d); pass --crop to draw the first min(tokens, rows, 30) as plot_attention does", o.TargetTokens, len(trg), m.Rows, o.Attention[0], m.Rows, m.Cols)
		}
	}
	fig, err := viz.Alignment(m, src, trg, "Attention alignment")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Attention[0], err)
	}
	return &Drawing{Figure: fig}, nil
}

// drawAlignmentEntropyFiles draws the row entropy and maximum weight histograms of the
// o.Attention matrices, with their means and standard deviations for the console.
func drawAlignmentEntropyFiles(o FigureOptions) (*Drawing, error) {
	ms := make([]viz.Matrix, len(o.Attention))
	for i, p := range o.Attention {
		m, err := ReadAlignmentFile(p)
		if err != nil {
			return nil, err
		}
		ms[i] = m
	}
	e, mx, err := AlignmentRowStats(ms)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(o.Attention, ", "), err)
	}
	fig, err := AlignmentEntropyFigure(ms, fmt.Sprintf("Attention over %d decoding steps of %d alignments", len(e), len(ms)))
	if err != nil {
		return nil, err
	}
	// Population standard deviations (numpy's np.std), as the notebook prints them.
	console := fmt.Sprintf("decoding steps: %d\nentropy: mean %.3f, std %.3f\nmax attention: mean %.3f, std %.3f",
		len(e), stats.Mean(e), math.Sqrt(stats.PopVariance(e)), stats.Mean(mx), math.Sqrt(stats.PopVariance(mx)))
	return &Drawing{Figure: fig, Console: console}, nil
}

// codeWeights reads the code figures' character weights with o's query and layer.
func codeWeights(ctx context.Context, run Run, id string, o FigureOptions) (*store.Sample, []float64, string, error) {
	layer, err := layerOf(ctx, run, id, o)
	if err != nil {
		return nil, nil, "", err
	}
	return CodeWeights(ctx, run, id, layer, CodeQuery{Query: o.Query, Tokens: o.Tokens}, o.Dist)
}

func drawCode(ctx context.Context, run Run, id string, o FigureOptions) (*Drawing, error) {
	s, w, title, err := codeWeights(ctx, run, id, o)
	if err != nil {
		return nil, err
	}
	co := viz.CodeOptions{Title: title, ClipPercentile: o.Clip}
	f, err := viz.CodeHeatmap(s.Text, w, co)
	if err != nil {
		return nil, err
	}
	page := func(out io.Writer) error { return viz.WriteCodeHTMLPage(out, s.Text, w, co) }
	return &Drawing{Figure: f, HTMLPage: page}, nil
}

func drawCodeWeights(ctx context.Context, run Run, id string, o FigureOptions) (*Drawing, error) {
	_, w, title, err := codeWeights(ctx, run, id, o)
	if err != nil {
		return nil, err
	}
	return drawn(viz.SortedWeights(w, title+": sorted character weights"))
}

// passOutput reads o.Pass's settings and its output for the sample.
func passOutput(run Run, id string, o FigureOptions) (store.PassInfo, *tensor.Tensor, error) {
	passes, err := run.DerivedPasses()
	if err != nil {
		return store.PassInfo{}, nil, err
	}
	for _, p := range passes {
		if p.Name == o.Pass {
			t, err := run.Derived(p.Name, id)
			return p, t, err
		}
	}
	if len(passes) == 0 {
		return store.PassInfo{}, nil, fmt.Errorf("run %s has no derived outputs (run attnscope derive first)", run.Dir())
	}
	names := make([]string, len(passes))
	for i, p := range passes {
		names[i] = p.Name
	}
	return store.PassInfo{}, nil, fmt.Errorf("run %s has no pass %q (passes: %s)", run.Dir(), o.Pass, strings.Join(names, ", "))
}

// derivedView is o.Pass's output brought to one figure by its declared axes, with o's
// layer and head selection.
func derivedView(run Run, id string, o FigureOptions) (*DerivedView, store.PassInfo, error) {
	pass, t, err := passOutput(run, id, o)
	if err != nil {
		return nil, pass, err
	}
	c, err := SampleAxisContext(run, id)
	if err != nil {
		return nil, pass, err
	}
	sel := Selection{Layer: o.Layer, Head: o.Head}
	if o.Head < 0 {
		sel.Head, sel.Reduce = -1, Reductions[-1-o.Head]
	}
	v, err := NewDerivedView(pass, id, t, c, sel)
	return v, pass, err
}

// drawDerived draws o.Pass's output by its declared axes; --layer, --head or --reduce
// on an output without such an axis is refused.
func drawDerived(ctx context.Context, run Run, id string, o FigureOptions) (*Drawing, error) {
	pass, t, err := passOutput(run, id, o)
	if err != nil {
		return nil, err
	}
	c, err := SampleAxisContext(run, id)
	if err != nil {
		return nil, err
	}
	if f, ok, err := CharCodeFigure(pass, t, c, id, o.Clip); ok || err != nil {
		return drawn(f, err) // one weight per character: drawn over the source code
	}
	v, pass, err := derivedView(run, id, o)
	if err != nil {
		return nil, err
	}
	if o.given("layer") && !v.UsedLayer {
		return nil, optionErrorf("pass %s has axes %s: no layer axis for --layer to select", pass.Name, store.AxesString(pass.Axes))
	}
	if (o.given("head") || o.given("reduce")) && !v.UsedHead {
		return nil, optionErrorf("pass %s has axes %s: no head axis for --head or --reduce", pass.Name, store.AxesString(pass.Axes))
	}
	return drawn(v.Figure(o.Clip))
}

func drawSlices(ctx context.Context, run Run, id string, o FigureOptions) (*Drawing, error) {
	pass, t, err := passOutput(run, id, o)
	if err != nil {
		return nil, err
	}
	return drawn(SlicesFigure(pass, t, id, o.Clip))
}

// drawGraph draws the attention graph, or o.Pass's [layer, query, key] output as one.
func drawGraph(ctx context.Context, run Run, id string, o FigureOptions) (*Drawing, error) {
	if o.Pass == "" {
		return drawn(GraphFigure(ctx, run, id, o.Head, o.TopK))
	}
	if o.given("head") || o.given("reduce") {
		return nil, optionErrorf("graph --pass draws the pass's output: --head and --reduce select attention heads only")
	}
	pass, t, err := passOutput(run, id, o)
	if err != nil {
		return nil, err
	}
	s, err := run.Sample(id)
	if err != nil {
		return nil, err
	}
	return drawn(DerivedGraphFigure(pass, t, s.Tokens, id, o.TopK))
}

// drawReference draws the AttentionSpan reference cells of o.Labels on attention or
// o.Pass's output.
func drawReference(mode viz.ReferenceMode) func(context.Context, Run, string, FigureOptions) (*Drawing, error) {
	return func(ctx context.Context, run Run, id string, o FigureOptions) (*Drawing, error) {
		if o.Labels == "" {
			return nil, optionErrorf("reference figures need --labels FILE.npy (1 reference, 0 other, -100 ignored)")
		}
		arr, err := checkpoint.ReadNpyFile(o.Labels)
		if err != nil {
			return nil, err
		}
		labels, err := arr.Ints()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", o.Labels, err)
		}
		m, title, err := referenceMatrix(ctx, run, id, o)
		if err != nil {
			return nil, err
		}
		if len(labels) != m.Rows*m.Cols {
			return nil, fmt.Errorf("read %s: %d labels (shape %v) for a %d×%d attention matrix", o.Labels, len(labels), arr.Shape, m.Rows, m.Cols)
		}
		var toks []string
		if s, err := run.Sample(id); err == nil && len(s.Tokens) >= m.Rows && m.Rows == m.Cols {
			toks = s.Tokens[:m.Rows]
		}
		return drawn(viz.Reference(m, labels, toks, toks, mode, title))
	}
}

// referenceMatrix is the matrix the reference cells are drawn on: o.Pass's output (a
// heatmap by its axes) or one layer's attention.
func referenceMatrix(ctx context.Context, run Run, id string, o FigureOptions) (viz.Matrix, string, error) {
	if o.Pass == "" {
		layer, err := layerOf(ctx, run, id, o)
		if err != nil {
			return viz.Matrix{}, "", err
		}
		m, err := AttentionMatrix(ctx, run, id, layer, o.Head)
		return m, fmt.Sprintf("%s: layer %d", id, layer), err
	}
	v, pass, err := derivedView(run, id, o)
	if err != nil {
		return viz.Matrix{}, "", err
	}
	if v.Kind != ViewHeatmap {
		return viz.Matrix{}, "", fmt.Errorf("pass %s has axes %s: not a matrix to outline reference cells on", pass.Name, store.AxesString(pass.Axes))
	}
	return v.Matrix, v.Title, nil
}

// Names of the files the dashboard writes beside its figure (the §3.3 analyzer's).
const (
	DashboardReportFile  = "attention_analysis_report.txt"
	DashboardSummaryFile = "attention_data_summary.json"
)

// drawDashboard draws the §3.3 dashboard, with its text report and JSON summary beside
// it and its console summary.
func drawDashboard(ctx context.Context, run Run, id string, o FigureOptions) (*Drawing, error) {
	a, err := sampleAnalysis(ctx, run, id)
	if err != nil {
		return nil, err
	}
	fig, err := viz.Dashboard(a.DashboardData(id + ": comprehensive attention analysis"))
	if err != nil {
		return nil, err
	}
	return &Drawing{Figure: fig, Console: a.ConsoleSummary() + "\n...",
		Beside: []BesideFile{
			{Name: DashboardReportFile, Write: a.WriteText},
			{Name: DashboardSummaryFile, Write: func(w io.Writer) error { return WriteSummaryJSON(w, *a.Summary) }},
		}}, nil
}

// sampleAnalysis runs the §3.3 analyzer over a sample.
func sampleAnalysis(ctx context.Context, run Run, id string) (*Analysis, error) {
	d, err := SampleAnalyzerData(ctx, run, id)
	if err != nil {
		return nil, err
	}
	a, err := Analyze(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("sample %s: %w", id, err)
	}
	return a, nil
}
