package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/attnscope/attnscope/analysis/code"
	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/report"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
	"github.com/attnscope/attnscope/viz"
)

// plotKinds lists the figures of attnscope plot with one line of help each and the
// flags each reads besides --sample, --out and --dpi; any other flag given is refused.
var plotKinds = []struct {
	name, help string
	flags      []string
}{
	{"heatmap", "token × token attention of one layer and head (--head) or a reduction of the heads (--reduce, default mean)", []string{"layer", "head", "reduce", "clip"}},
	{"grid", "all layers × heads as thumbnails (BertViz's model view as a static figure)", []string{"clip"}},
	{"code", "the prompt's source text coloured by the attention of one query (.png/.svg/.pdf or .html)", []string{"layer", "query", "tokens", "dist", "clip"}},
	{"code-weights", "the code figure's character weights sorted against linspace(0, 1, n, endpoint=False): the \"cumulative distribution\" line (same flags as code but --clip)", []string{"layer", "query", "tokens", "dist"}},
	{"entropy", "histograms of row entropy and maximum weight over all layers and heads, with means", nil},
	{"received", "attention received per key position in one layer", []string{"layer", "head", "reduce"}},
	{"dashboard", "the 12-panel attention-analysis dashboard, with attention_analysis_report.txt and attention_data_summary.json beside it (needs --hidden captures)", nil},
	{"graph", "layer-by-layer attention graph: each token's top-k (--top-k, 3) targets per layer, edges coloured by rank; --pass NAME draws a [layer, query, key] pass output (e.g. follow-up)", []string{"head", "reduce", "top-k", "pass"}},
	{"derived", "a derive pass's output (--pass NAME) drawn by the axes its function declares: heatmap, bars, curves or records; --layer/--head/--reduce select where it has layer and head axes", []string{"pass", "layer", "head", "reduce", "clip"}},
	{"slices", "every slice of a derive pass's output with 3 axes (5 columns) or [layer, head, N, M] (layers × heads): --pass NAME", []string{"pass", "clip"}},
	{"js", "Jensen–Shannon distances between all (layer, head) units, or layers with --by-layer", []string{"by-layer"}},
	{"crispiness", "each head's crispiness curve (--mass: cumulative-mass variant)", []string{"mass"}},
	{"reference", "AttentionSpan reference cells outlined (--labels FILE.npy with 1/0/-100) on attention or a pass (--pass)", []string{"labels", "pass", "layer", "head", "reduce"}},
	{"reference-scores", "AttentionSpan scores on the reference map (viridis), same inputs as reference", []string{"labels", "pass", "layer", "head", "reduce"}},
	{"alignment", "source × target heatmap (Text_to_Python's plot_attention, at most 30 × 30): a generation's generated × prompt tokens of a run, or --attention A.npy (steps × S) with --source-tokens and --target-tokens (no RUN)", []string{"layer", "head", "reduce", "attention", "source-tokens", "target-tokens", "crop"}},
	{"alignment-entropy", "histograms of the row entropy and maximum weight of alignment matrices, with means: every generation of a RUN (or --sample's), or --attention A.npy (repeatable; no RUN)", []string{"attention", "layer", "head", "reduce"}},
}

// checkPlotFlags refuses a flag the figure kind does not read (it would be ignored).
func checkPlotFlags(cmd *cobra.Command, kind string) error {
	var accepted []string
	known := false
	for _, k := range plotKinds {
		if k.name == kind {
			accepted, known = k.flags, true
		}
	}
	if !known {
		var names []string
		for _, k := range plotKinds {
			names = append(names, k.name)
		}
		return usagef(cmd, "unknown figure kind %q (want one of %s)", kind, strings.Join(names, ", "))
	}
	var bad []string
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if f.Name != "sample" && f.Name != "out" && f.Name != "dpi" && !slices.Contains(accepted, f.Name) {
			bad = append(bad, "--"+f.Name)
		}
	})
	if len(bad) > 0 {
		return usagef(cmd, "plot %s does not use %s (it reads %s)", kind, strings.Join(bad, ", "), flagList(accepted))
	}
	return nil
}

func flagList(flags []string) string {
	if len(flags) == 0 {
		return "only --sample, --out and --dpi"
	}
	out := make([]string, len(flags))
	for i, f := range flags {
		out[i] = "--" + f
	}
	return strings.Join(out, ", ") + " besides --sample, --out and --dpi"
}

type plotFlags struct {
	sample, out, pass, labels, dist string
	tokens                          string
	layer, head, query, topK        int
	reduce                          string
	byLayer, mass                   bool
	clip                            float64
	dpi                             int
	attention                       []string
	srcTokens, trgTokens            string
	crop                            bool
}

func newPlotCmd() *cobra.Command {
	var f plotFlags
	var kinds strings.Builder
	for _, k := range plotKinds {
		fmt.Fprintf(&kinds, "  %-17s %s\n", k.name, k.help)
	}
	cmd := &cobra.Command{
		Use:   "plot KIND [RUN] --out FILE.{png,svg,pdf}",
		Short: "Draw a figure of a run (heatmap, grid, code, entropy, dashboard, ...) as PNG, SVG or PDF",
		Long: `plot draws one figure of a run folder and writes it to --out, as PNG, SVG or PDF by the
file's extension. Figures show one sample (--sample, default the first).

Kinds:
` + kinds.String(),
		Example: `  attnscope plot heatmap runs/gpt2 --sample s0 --layer 3 --head 5 --out l3h5.pdf
  attnscope plot heatmap runs/gpt2 --layer 3 --reduce mean --out l3.png
  attnscope plot grid runs/gpt2 --out heads.png
  attnscope plot code runs/gpt2 --out code.html
  attnscope plot dashboard runs/gpt2 --out analysis/comprehensive_attention_analysis.png
  attnscope plot derived runs/gpt2 --pass rollout --out rollout.svg
  attnscope plot alignment --attention att.npy --source-tokens doc.txt --target-tokens code.json --out attention_example_1.png
  attnscope plot alignment-entropy --attention a0.npy --attention a1.npy --out attention_entropy_analysis.png`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			fromFiles := (args[0] == "alignment-entropy" || args[0] == "alignment") && len(f.attention) > 0
			if fromFiles {
				if len(args) == 2 {
					return usagef(cmd, "%s with --attention takes no RUN argument", args[0])
				}
				return runPlotFiles(cmd, args[0], f)
			}
			if len(args) != 2 {
				return usagef(cmd, "plot %s needs a RUN folder", args[0])
			}
			return runPlot(cmd, args[0], args[1], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.sample, "sample", "", "sample id (default: the first sample of the run)")
	fl.StringVarP(&f.out, "out", "o", "", "output file: .png, .svg or .pdf (code also .html)")
	fl.IntVar(&f.layer, "layer", -1, "layer (default: the last)")
	fl.IntVar(&f.head, "head", -1, "head (default: the mean over heads)")
	fl.StringVar(&f.reduce, "reduce", "", "reduction over heads instead of --head: "+strings.Join(report.Reductions, ", ")+" (default mean)")
	fl.IntVar(&f.query, "query", -1, "code: query token whose attention is shown (default: the last prompt token)")
	fl.StringVar(&f.tokens, "tokens", "", "code: average the attention of every token with this text (e.g. '):') instead of one query")
	fl.StringVar(&f.dist, "dist", "replication", "code: how a token's weight spreads over its characters: replication or equal_share")
	fl.Float64Var(&f.clip, "clip", 0, "clip the colour scale at this percentile of the values (e.g. 99.9; 0: no clipping)")
	fl.StringVar(&f.pass, "pass", "", "derived, slices, graph, reference: the derive pass whose output to draw")
	fl.StringVar(&f.labels, "labels", "", "reference: .npy of labels (1 reference, 0 other, -100 ignored), [N, N] or [N*N]")
	fl.BoolVar(&f.byLayer, "by-layer", false, "js: distances between layers (head-averaged rows) instead of units")
	fl.BoolVar(&f.mass, "mass", false, "crispiness: the cumulative-mass variant")
	fl.IntVar(&f.topK, "top-k", 3, "graph: targets drawn per token and layer")
	fl.IntVar(&f.dpi, "dpi", viz.DefaultDPI, "resolution of PNG output")
	fl.StringArrayVar(&f.attention, "attention", nil, "alignment, alignment-entropy: .npy attention matrix (decoding steps × source positions); repeat for alignment-entropy")
	fl.StringVar(&f.srcTokens, "source-tokens", "", "alignment: source tokens, one per line or a JSON list of strings (one per column)")
	fl.StringVar(&f.trgTokens, "target-tokens", "", "alignment: generated tokens, one per line or a JSON list of strings (one per row)")
	fl.BoolVar(&f.crop, "crop", false, "alignment: accept token counts that differ from the matrix shape and draw min(tokens, rows or columns, 30), as plot_attention does")
	return cmd
}

func runPlot(cmd *cobra.Command, kind, dir string, f plotFlags) error {
	if err := checkPlotFlags(cmd, kind); err != nil {
		return err
	}
	head, err := checkPlotArgs(cmd, kind, f)
	if err != nil {
		return err
	}
	if err := prepareOutDir(f.out); err != nil {
		return err
	}
	run, err := report.OpenRun(dir)
	if err != nil {
		return err
	}
	id, err := plotSample(run, f.sample)
	if err != nil {
		return err
	}
	p := plotCall{cmd: cmd, run: run, id: id, f: f, head: head, layer: f.layer}
	if kind == "dashboard" {
		return plotDashboard(cmd.Context(), cmd, run, id, f)
	}
	if kind == "code" && strings.EqualFold(filepath.Ext(f.out), ".html") {
		return p.codeHTML()
	}
	fig, err := p.figure(kind)
	if err != nil {
		return err
	}
	fig.DPI = f.dpi
	if err := fig.Save(f.out); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", f.out)
	return nil
}

// checkPlotArgs checks the flags' values and returns the head selection (a head, or
// a reduction of the heads).
func checkPlotArgs(cmd *cobra.Command, kind string, f plotFlags) (int, error) {
	fl := cmd.Flags()
	switch {
	case f.out == "":
		return 0, usagef(cmd, "--out is required")
	case (kind == "derived" || kind == "slices") && f.pass == "":
		return 0, usagef(cmd, "plot %s needs --pass NAME (the derive pass whose output to draw)", kind)
	case f.tokens != "" && fl.Changed("query"):
		return 0, usagef(cmd, "--query and --tokens exclude each other")
	case fl.Changed("reduce") && fl.Changed("head"):
		return 0, usagef(cmd, "--head and --reduce exclude each other")
	case f.clip < 0 || f.clip >= 100:
		return 0, usagef(cmd, "--clip %v: a percentile in [0, 100) expected", f.clip)
	case f.dpi < 10 || f.dpi > 1200:
		return 0, usagef(cmd, "--dpi %d: between 10 and 1200 expected", f.dpi)
	case fl.Changed("head") && f.head < 0:
		return 0, usagef(cmd, "--head %d: heads are numbered from 0", f.head)
	case fl.Changed("layer") && f.layer < 0:
		return 0, usagef(cmd, "--layer %d: layers are numbered from 0", f.layer)
	case kind == "graph" && f.topK < 1:
		return 0, usagef(cmd, "--top-k %d: at least 1 expected", f.topK)
	}
	if !(strings.EqualFold(filepath.Ext(f.out), ".html") && kind == "code") {
		if _, err := viz.FormatOf(f.out); err != nil {
			return 0, usagef(cmd, "%v", err)
		}
	}
	if fl.Changed("head") {
		return f.head, nil
	}
	head, err := report.HeadReduction(cmp.Or(f.reduce, "mean"))
	if err != nil {
		return 0, usagef(cmd, "--reduce: %v", err)
	}
	return head, nil
}

// plotSample returns the sample to draw: id, or the run's first; an unknown id is
// refused with the run's ids.
func plotSample(run *store.Run, id string) (string, error) {
	ids, err := run.Samples()
	if err != nil {
		return "", err
	}
	if len(ids) == 0 {
		return "", fmt.Errorf("run %s has no samples", run.Dir())
	}
	if id == "" {
		return ids[0], nil
	}
	if !slices.Contains(ids, id) {
		shown := ids
		if len(shown) > 20 {
			shown = append(slices.Clone(ids[:20]), fmt.Sprintf("... (%d in all)", len(ids)))
		}
		return "", fmt.Errorf("run %s has no sample %q (samples: %s)", run.Dir(), id, strings.Join(shown, ", "))
	}
	return id, nil
}

// plotCall is one figure to draw from a run.
type plotCall struct {
	cmd         *cobra.Command
	run         *store.Run
	id          string
	f           plotFlags
	head, layer int
}

// lastLayer returns --layer or the sample's last layer.
func (p *plotCall) lastLayer() (int, error) {
	if p.cmd.Flags().Changed("layer") {
		return p.f.layer, nil
	}
	n, err := p.run.NumLayers(p.id)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, fmt.Errorf("sample %s of run %s has no attention captured", p.id, p.run.Dir())
	}
	return n - 1, nil
}

// figure draws a figure of one of the plotKinds (but dashboard and code as HTML).
func (p *plotCall) figure(kind string) (*viz.Figure, error) {
	ctx, run, id, f := p.cmd.Context(), p.run, p.id, p.f
	switch kind {
	case "grid":
		return report.GridFigure(ctx, run, id, f.clip)
	case "entropy":
		return report.EntropyFigure(ctx, run, id)
	case "js":
		return report.JSFigure(ctx, run, id, f.byLayer)
	case "crispiness":
		return report.CrispinessFigure(ctx, run, id, f.mass)
	case "derived":
		return p.derived()
	case "slices":
		pass, t, err := p.passOutput()
		if err != nil {
			return nil, err
		}
		return report.SlicesFigure(pass, t, id, f.clip)
	case "graph":
		return p.graph()
	case "reference", "reference-scores":
		return plotReference(p, kind)
	}
	layer, err := p.lastLayer()
	if err != nil {
		return nil, err
	}
	switch kind {
	case "heatmap":
		return report.HeatmapFigure(ctx, run, id, layer, p.head, f.clip)
	case "received":
		return report.ReceivedFigure(ctx, run, id, layer, p.head)
	case "alignment":
		return report.AlignmentFigure(ctx, run, id, layer, p.head)
	case "alignment-entropy":
		return p.alignmentEntropy(layer)
	}
	dist, err := code.ParseDistribution(f.dist)
	if err != nil {
		return nil, usagef(p.cmd, "--dist: %v", err)
	}
	q := report.CodeQuery{Query: f.query, Tokens: f.tokens}
	if kind == "code" {
		return report.CodeFigure(ctx, run, id, layer, q, dist, f.clip)
	}
	return report.CodeWeightsFigure(ctx, run, id, layer, q, dist)
}

// codeHTML writes the code figure as a self-contained HTML page.
func (p *plotCall) codeHTML() error {
	dist, err := code.ParseDistribution(p.f.dist)
	if err != nil {
		return usagef(p.cmd, "--dist: %v", err)
	}
	layer, err := p.lastLayer()
	if err != nil {
		return err
	}
	s, w, title, err := report.CodeWeights(p.cmd.Context(), p.run, p.id, layer, report.CodeQuery{Query: p.f.query, Tokens: p.f.tokens}, dist)
	if err != nil {
		return err
	}
	return writeOut(p.cmd, p.f.out, func(out io.Writer) error {
		return viz.WriteCodeHTMLPage(out, s.Text, w, viz.CodeOptions{Title: title, ClipPercentile: p.f.clip})
	})
}

// passOutput reads --pass's settings and its output for the sample.
func (p *plotCall) passOutput() (store.PassInfo, *tensor.Tensor, error) {
	pass, err := p.run.Pass(p.f.pass)
	if err != nil {
		return pass, nil, err
	}
	t, err := p.run.Derived(pass.Name, p.id)
	return pass, t, err
}

// derived draws --pass's output by its declared axes; --layer, --head or --reduce on
// an output without such an axis is refused.
func (p *plotCall) derived() (*viz.Figure, error) {
	pass, t, err := p.passOutput()
	if err != nil {
		return nil, err
	}
	c, err := report.SampleAxisContext(p.run, p.id)
	if err != nil {
		return nil, err
	}
	fl := p.cmd.Flags()
	if f, ok, err := report.CharCodeFigure(pass, t, c, p.id, p.f.clip); ok || err != nil {
		return f, err // one weight per character: drawn over the source code
	}
	sel := report.Selection{Layer: -1, Head: -1, Reduce: p.f.reduce}
	if fl.Changed("layer") {
		sel.Layer = p.f.layer
	}
	if fl.Changed("head") {
		sel.Head = p.f.head
	}
	v, err := report.NewDerivedView(pass, p.id, t, c, sel)
	if err != nil {
		return nil, err
	}
	if fl.Changed("layer") && !v.UsedLayer {
		return nil, usagef(p.cmd, "pass %s has axes %s: no layer axis for --layer to select", pass.Name, store.AxesString(pass.Axes))
	}
	if (fl.Changed("head") || fl.Changed("reduce")) && !v.UsedHead {
		return nil, usagef(p.cmd, "pass %s has axes %s: no head axis for --head or --reduce", pass.Name, store.AxesString(pass.Axes))
	}
	return v.Figure(p.f.clip)
}

// graph draws the attention graph, or --pass's [layer, query, key] output as one.
func (p *plotCall) graph() (*viz.Figure, error) {
	if p.f.pass == "" {
		return report.GraphFigure(p.cmd.Context(), p.run, p.id, p.head, p.f.topK)
	}
	if p.cmd.Flags().Changed("head") || p.cmd.Flags().Changed("reduce") {
		return nil, usagef(p.cmd, "graph --pass draws the pass's output: --head and --reduce select attention heads only")
	}
	pass, t, err := p.passOutput()
	if err != nil {
		return nil, err
	}
	s, err := p.run.Sample(p.id)
	if err != nil {
		return nil, err
	}
	return report.DerivedGraphFigure(pass, t, s.Tokens, p.id, p.f.topK)
}

// prepareOutDir creates the output's folder (like capture and derive do) and fails
// early, before any work, when it is not a writable folder.
func prepareOutDir(out string) error {
	dir := filepath.Dir(out)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output %s: create folder %s: %w", out, dir, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("output %s: folder %s: %w", out, dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("output %s: %s is not a folder", out, dir)
	}
	probe, err := os.CreateTemp(dir, ".attnscope-probe-*")
	if err != nil {
		return fmt.Errorf("output %s: folder %s is not writable: %w", out, dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return nil
}

// writeOut writes a file atomically and reports it.
func writeOut(cmd *cobra.Command, path string, fill func(io.Writer) error) error {
	if err := atomicfile.WriteWith(path, fill); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", path)
	return nil
}

func plotReference(p *plotCall, kind string) (*viz.Figure, error) {
	f := p.f
	if f.labels == "" {
		return nil, usagef(p.cmd, "%s needs --labels FILE.npy (1 reference, 0 other, -100 ignored)", kind)
	}
	arr, err := checkpoint.ReadNpyFile(f.labels)
	if err != nil {
		return nil, err
	}
	labels, err := arr.Ints()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.labels, err)
	}
	m, title, err := p.referenceMatrix()
	if err != nil {
		return nil, err
	}
	if len(labels) != m.Rows*m.Cols {
		return nil, fmt.Errorf("read %s: %d labels (shape %v) for a %d×%d attention matrix", f.labels, len(labels), arr.Shape, m.Rows, m.Cols)
	}
	var toks []string
	if s, err := p.run.Sample(p.id); err == nil && len(s.Tokens) >= m.Rows && m.Rows == m.Cols {
		toks = s.Tokens[:m.Rows]
	}
	mode := viz.ReferenceOutline
	if kind == "reference-scores" {
		mode = viz.ReferenceScores
	}
	return viz.Reference(m, labels, toks, toks, mode, title)
}

// referenceMatrix is the matrix the reference cells are drawn on: --pass's output
// (a heatmap by its axes) or one layer's attention.
func (p *plotCall) referenceMatrix() (viz.Matrix, string, error) {
	if p.f.pass == "" {
		layer, err := p.lastLayer()
		if err != nil {
			return viz.Matrix{}, "", err
		}
		m, err := report.AttentionMatrix(p.cmd.Context(), p.run, p.id, layer, p.head)
		return m, fmt.Sprintf("%s: layer %d", p.id, layer), err
	}
	pass, t, err := p.passOutput()
	if err != nil {
		return viz.Matrix{}, "", err
	}
	c, err := report.SampleAxisContext(p.run, p.id)
	if err != nil {
		return viz.Matrix{}, "", err
	}
	sel := report.Selection{Layer: -1, Head: -1, Reduce: p.f.reduce}
	if p.cmd.Flags().Changed("layer") {
		sel.Layer = p.f.layer
	}
	if p.cmd.Flags().Changed("head") {
		sel.Head = p.f.head
	}
	v, err := report.NewDerivedView(pass, p.id, t, c, sel)
	if err != nil {
		return viz.Matrix{}, "", err
	}
	if v.Kind != report.ViewHeatmap {
		return viz.Matrix{}, "", fmt.Errorf("pass %s has axes %s: not a matrix to outline reference cells on", pass.Name, store.AxesString(pass.Axes))
	}
	return v.Matrix, v.Title, nil
}

func plotDashboard(ctx context.Context, cmd *cobra.Command, run *store.Run, id string, f plotFlags) error {
	d, err := report.SampleAnalyzerData(ctx, run, id)
	if err != nil {
		return err
	}
	a, err := report.Analyze(ctx, d)
	if err != nil {
		return fmt.Errorf("sample %s: %w", id, err)
	}
	fig, err := viz.Dashboard(a.DashboardData(id + ": comprehensive attention analysis"))
	if err != nil {
		return err
	}
	fig.DPI = f.dpi
	dir := filepath.Dir(f.out)
	txt := filepath.Join(dir, "attention_analysis_report.txt")
	js := filepath.Join(dir, "attention_data_summary.json")
	if err := fig.Save(f.out); err != nil {
		return err
	}
	if err := atomicfile.WriteWith(txt, a.WriteText); err != nil {
		return err
	}
	if err := atomicfile.WriteWith(js, func(w io.Writer) error { return report.WriteSummaryJSON(w, *a.Summary) }); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintln(out, a.ConsoleSummary())
	fmt.Fprintf(out, "...\nwrote %s, %s and %s\n", f.out, txt, js)
	return nil
}

// alignmentEntropy draws the row-entropy and maximum-weight histograms over the
// generated × prompt alignments of every sample of the run (only --sample's when given),
// as Text_to_Python's aggregate analysis does over its test set.
func (p *plotCall) alignmentEntropy(layer int) (*viz.Figure, error) {
	ids := []string{p.id}
	if p.f.sample == "" {
		var err error
		if ids, err = p.run.Samples(); err != nil {
			return nil, err
		}
	}
	ms := make([]viz.Matrix, 0, len(ids))
	for _, id := range ids {
		m, _, _, err := report.GenerationAlignment(p.cmd.Context(), p.run, id, layer, p.head)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return report.AlignmentEntropyFigure(ms, fmt.Sprintf("Attention over the alignments of %d samples (layer %d)", len(ms), layer))
}
