package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/analysis/code"
	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/report"
	"github.com/attnscope/attnscope/viz"
)

// plotKinds lists the figures of attnscope plot with one line of help each.
var plotKinds = []struct{ name, help string }{
	{"heatmap", "token × token attention of one layer and head (--head) or the head mean (default)"},
	{"grid", "all layers × heads as thumbnails (BertViz's model view as a static figure)"},
	{"code", "the prompt's source text coloured by the attention of one query (.png/.svg/.pdf or .html)"},
	{"code-weights", "the code figure's character weights sorted against linspace(0, 1, n, endpoint=False): the \"cumulative distribution\" line (same flags as code)"},
	{"entropy", "histograms of row entropy and maximum weight over all layers and heads, with means"},
	{"received", "attention received per key position in one layer"},
	{"dashboard", "the 12-panel attention-analysis dashboard, with attention_analysis_report.txt and attention_data_summary.json beside it (needs --hidden captures)"},
	{"graph", "layer-by-layer attention graph: each token's top-k (--top-k, 3) targets per layer, edges coloured by rank; --pass NAME draws a [layer, N, N] pass output (e.g. follow-up)"},
	{"derived", "a derive pass's matrix output (rollout, flow, follow-up, ...): --pass NAME [--layer] [--head]"},
	{"slices", "every slice of a derive pass's 3-D output (5 columns) or 4-D output (layers × heads): --pass NAME"},
	{"js", "Jensen–Shannon distances between all (layer, head) units, or layers with --by-layer; or a derive pass's matrix (--pass NAME)"},
	{"crispiness", "each head's crispiness curve (--mass: cumulative-mass variant); or a derive pass's curves (--pass NAME)"},
	{"reference", "AttentionSpan reference cells outlined (--labels FILE.npy with 1/0/-100) on attention or a pass (--pass)"},
	{"reference-scores", "AttentionSpan scores on the reference map (viridis), same inputs as reference"},
	{"alignment", "source × target heatmap (Text_to_Python's plot_attention, at most 30 × 30): a generation's generated × prompt tokens of a run, or --attention A.npy (steps × S) with --source-tokens and --target-tokens (no RUN)"},
	{"alignment-entropy", "histograms of the row entropy and maximum weight of alignment matrices (--attention A.npy, repeatable; no RUN), with means"},
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
			fromFiles := args[0] == "alignment-entropy" || (args[0] == "alignment" && len(f.attention) > 0)
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
	fl.StringVar(&f.reduce, "reduce", "", "reduction over heads instead of --head: mean")
	fl.IntVar(&f.query, "query", -1, "code: query token whose attention is shown (default: the last prompt token)")
	fl.StringVar(&f.tokens, "tokens", "", "code: average the attention of every token with this text (e.g. '):') instead of one query")
	fl.StringVar(&f.dist, "dist", "replication", "code: how a token's weight spreads over its characters: replication or equal_share")
	fl.Float64Var(&f.clip, "clip", 0, "clip the colour scale at this percentile of the values (e.g. 99.9; 0: no clipping)")
	fl.StringVar(&f.pass, "pass", "", "derived, js, crispiness, reference: the derive pass whose output to draw")
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
	known := false
	for _, k := range plotKinds {
		known = known || k.name == kind
	}
	if !known {
		var names []string
		for _, k := range plotKinds {
			names = append(names, k.name)
		}
		return usagef(cmd, "unknown figure kind %q (want one of %s)", kind, strings.Join(names, ", "))
	}
	if f.out == "" {
		return usagef(cmd, "--out is required")
	}
	ext := strings.ToLower(filepath.Ext(f.out))
	if !(ext == ".html" && kind == "code") {
		if _, err := viz.FormatOf(f.out); err != nil {
			return usagef(cmd, "%v", err)
		}
	}
	if f.tokens != "" && cmd.Flags().Changed("query") {
		return usagef(cmd, "--query and --tokens exclude each other")
	}
	if f.reduce != "" && f.reduce != "mean" {
		return usagef(cmd, "--reduce %q: only mean is supported", f.reduce)
	}
	if f.reduce != "" && cmd.Flags().Changed("head") {
		return usagef(cmd, "--head and --reduce exclude each other")
	}
	if f.clip < 0 || f.clip >= 100 {
		return usagef(cmd, "--clip %v: a percentile in [0, 100) expected", f.clip)
	}
	if f.dpi < 10 || f.dpi > 1200 {
		return usagef(cmd, "--dpi %d: between 10 and 1200 expected", f.dpi)
	}
	head := report.MeanHeads
	if cmd.Flags().Changed("head") {
		if f.head < 0 {
			return fmt.Errorf("head %d out of range: heads are numbered from 0", f.head)
		}
		head = f.head
	}
	if cmd.Flags().Changed("layer") && f.layer < 0 {
		return fmt.Errorf("layer %d out of range: layers are numbered from 0", f.layer)
	}
	if err := checkOutDir(f.out); err != nil {
		return err
	}
	ctx := cmd.Context()
	run, err := report.OpenRun(dir)
	if err != nil {
		return err
	}
	id := f.sample
	if id == "" {
		ids, err := run.Samples(ctx)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return fmt.Errorf("run %s has no samples", dir)
		}
		id = ids[0]
	}
	layer := f.layer
	if layer < 0 && kind != "derived" && kind != "slices" && kind != "reference" && kind != "reference-scores" {
		n, err := run.NumLayers(ctx, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("sample %s of run %s has no attention captured", id, dir)
		}
		layer = n - 1
	}

	var fig *viz.Figure
	switch kind {
	case "heatmap":
		fig, err = report.HeatmapFigure(ctx, run, id, layer, head, f.clip)
	case "grid":
		fig, err = report.GridFigure(ctx, run, id, f.clip)
	case "received":
		fig, err = report.ReceivedFigure(ctx, run, id, layer, head)
	case "entropy":
		fig, err = report.EntropyFigure(ctx, run, id)
	case "code":
		dist, derr := code.ParseDistribution(f.dist)
		if derr != nil {
			return usagef(cmd, "--dist: %v", derr)
		}
		if ext == ".html" {
			s, w, title, err := report.CodeWeights(ctx, run, id, layer, report.CodeQuery{Query: f.query, Tokens: f.tokens}, dist)
			if err != nil {
				return err
			}
			return writeOut(cmd, f.out, func(out io.Writer) error {
				return viz.WriteCodeHTMLPage(out, s.Text, w, viz.CodeOptions{Title: title, ClipPercentile: f.clip})
			})
		}
		fig, err = report.CodeFigure(ctx, run, id, layer, report.CodeQuery{Query: f.query, Tokens: f.tokens}, dist, f.clip)
	case "code-weights":
		dist, derr := code.ParseDistribution(f.dist)
		if derr != nil {
			return usagef(cmd, "--dist: %v", derr)
		}
		fig, err = report.CodeWeightsFigure(ctx, run, id, layer, report.CodeQuery{Query: f.query, Tokens: f.tokens}, dist)
	case "dashboard":
		return plotDashboard(ctx, cmd, run, id, f)
	case "graph":
		if f.topK < 1 {
			return usagef(cmd, "--top-k %d: at least 1 expected", f.topK)
		}
		if f.pass != "" {
			vals, shape, derr := run.Derived(f.pass, id)
			if derr != nil {
				return derr
			}
			s, serr := run.Sample(ctx, id)
			if serr != nil {
				return serr
			}
			fig, err = report.DerivedGraphFigure(vals, shape, s.Tokens, f.pass, id, f.topK)
		} else {
			fig, err = report.GraphFigure(ctx, run, id, head, f.topK)
		}
	case "js":
		if f.pass == "" {
			fig, err = report.JSFigure(ctx, run, id, f.byLayer)
		} else {
			fig, err = plotDerived(run, id, kind, f, head)
		}
	case "derived":
		fig, err = plotDerived(run, id, kind, f, head)
	case "slices":
		if f.pass == "" {
			return usagef(cmd, "slices needs --pass NAME (the derive pass whose output to draw)")
		}
		vals, shape, derr := run.Derived(f.pass, id)
		if derr != nil {
			return derr
		}
		fig, err = report.SlicesFigure(vals, shape, f.pass, id, f.clip)
	case "crispiness":
		if f.pass == "" {
			fig, err = report.CrispinessFigure(ctx, run, id, f.mass)
			break
		}
		vals, shape, derr := run.Derived(f.pass, id)
		if derr != nil {
			return derr
		}
		series, serr := report.CurvesFromDerived(vals, shape)
		if serr != nil {
			return fmt.Errorf("pass %s, sample %s: %w", f.pass, id, serr)
		}
		fig, err = viz.Curves(series, viz.CurvesOptions{Title: fmt.Sprintf("%s: crispiness (%s)", id, f.pass), XLabel: "fraction of keys", YLabel: "sorted attention weight"})
	case "reference", "reference-scores":
		fig, err = plotReference(ctx, run, id, kind, f, head)
	case "alignment":
		fig, err = report.AlignmentFigure(ctx, run, id, layer, head)
	}
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

// checkOutDir fails early, before any work, when the output's folder does not exist
// or is not writable.
func checkOutDir(out string) error {
	dir := filepath.Dir(out)
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

func plotDerived(run *report.StoreRun, id, kind string, f plotFlags, head int) (*viz.Figure, error) {
	if f.pass == "" {
		return nil, fmt.Errorf("%s needs --pass NAME (the derive pass whose output to draw)", kind)
	}
	vals, shape, err := run.Derived(f.pass, id)
	if err != nil {
		return nil, err
	}
	m, sel, err := report.DerivedMatrix(vals, shape, f.layer, head)
	if err != nil {
		return nil, fmt.Errorf("pass %s, sample %s: %w", f.pass, id, err)
	}
	title := fmt.Sprintf("%s: %s", id, f.pass)
	if sel != "" {
		title += ", " + sel
	}
	o := viz.HeatmapOptions{Title: title, ClipPercentile: f.clip}
	if kind == "js" {
		if m.Rows != m.Cols {
			return nil, fmt.Errorf("pass %s, sample %s: a Jensen–Shannon matrix must be square, got %d×%d", f.pass, id, m.Rows, m.Cols)
		}
		L, H := 0, 0
		if n, err := run.NumLayers(context.Background(), id); err == nil && n > 0 {
			if a, err := run.AttentionLayer(context.Background(), id, 0); err == nil {
				L, H = n, a.Heads
			}
		}
		labels := report.UnitLabels(m.Rows, L, H)
		o.RowLabels, o.ColLabels = labels, labels
		o.XLabel, o.YLabel = "unit", "unit"
		o.Colormap = viz.Viridis
		o.ColorbarLabel = "Jensen–Shannon distance"
	} else {
		s, err := run.Sample(context.Background(), id)
		if err == nil && len(s.Tokens) >= m.Rows && m.Rows == m.Cols {
			o.RowLabels, o.ColLabels = s.Tokens[:m.Rows], s.Tokens[:m.Cols]
		}
		o.ColorbarLabel = f.pass
	}
	return viz.Heatmap(m, o)
}

func plotReference(ctx context.Context, run *report.StoreRun, id, kind string, f plotFlags, head int) (*viz.Figure, error) {
	if f.labels == "" {
		return nil, fmt.Errorf("%s needs --labels FILE.npy (1 reference, 0 other, -100 ignored)", kind)
	}
	arr, err := checkpoint.ReadNpyFile(f.labels)
	if err != nil {
		return nil, err
	}
	labels, err := arr.Ints()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.labels, err)
	}
	var m viz.Matrix
	title := id
	if f.pass != "" {
		vals, shape, err := run.Derived(f.pass, id)
		if err != nil {
			return nil, err
		}
		var sel string
		m, sel, err = report.DerivedMatrix(vals, shape, f.layer, head)
		if err != nil {
			return nil, fmt.Errorf("pass %s, sample %s: %w", f.pass, id, err)
		}
		title += ": " + f.pass + " " + sel
	} else {
		layer := f.layer
		if layer < 0 {
			n, err := run.NumLayers(ctx, id)
			if err != nil {
				return nil, err
			}
			layer = n - 1
		}
		a, err := run.AttentionLayer(ctx, id, layer)
		if err != nil {
			return nil, err
		}
		if head == report.MeanHeads {
			m, _ = viz.NewMatrix(a.Q, a.K, a.Mean())
		} else if head >= a.Heads {
			return nil, fmt.Errorf("head %d out of range: the layer has heads 0..%d", head, a.Heads-1)
		} else {
			m, _ = viz.NewMatrix(a.Q, a.K, a.Head(head))
		}
		title += fmt.Sprintf(": layer %d", layer)
	}
	if len(labels) != m.Rows*m.Cols {
		return nil, fmt.Errorf("read %s: %d labels (shape %v) for a %d×%d attention matrix", f.labels, len(labels), arr.Shape, m.Rows, m.Cols)
	}
	var toks []string
	if s, err := run.Sample(ctx, id); err == nil && len(s.Tokens) >= m.Rows && m.Rows == m.Cols {
		toks = s.Tokens[:m.Rows]
	}
	mode := viz.ReferenceOutline
	if kind == "reference-scores" {
		mode = viz.ReferenceScores
	}
	return viz.Reference(m, labels, toks, toks, mode, title)
}

func plotDashboard(ctx context.Context, cmd *cobra.Command, run *report.StoreRun, id string, f plotFlags) error {
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
