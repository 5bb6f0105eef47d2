package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/attnscope/attnscope/analysis/code"
	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/report"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/viz"
)

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
	rows, cols                      string
}

func newPlotCmd() *cobra.Command {
	var f plotFlags
	cmd := &cobra.Command{
		Use:   "plot KIND [RUN] --out FILE.{png,svg,pdf}",
		Short: "Draw a figure of a run (heatmap, grid, code, entropy, dashboard, ...) as PNG, SVG or PDF",
		Long: `plot draws one figure of a run folder and writes it to --out, as PNG, SVG or PDF by the
file's extension. Figures show one sample (--sample, default the first). The kinds are
those of the HTML report (attnscope report --figures); 'attnscope plot list' shows what
each reads, its flags and whether the report draws it.

Kinds:
` + figureKindsHelp(),
		Example: `  attnscope plot list
  attnscope plot heatmap runs/gpt2 --sample s0 --layer 3 --head 5 --out l3h5.pdf
  attnscope plot heatmap runs/gpt2 --layer 3 --reduce mean --out l3.png
  attnscope plot grid runs/gpt2 --out heads.png
  attnscope plot heatmap runs/long --layer 2 --head 1 --rows 30000:30200 --cols 0:500 --out window.png
  attnscope plot code runs/gpt2 --out code.html
  attnscope plot dashboard runs/gpt2 --out analysis/comprehensive_attention_analysis.png
  attnscope plot derived runs/gpt2 --pass rollout --out rollout.svg
  attnscope plot alignment --attention att.npy --source-tokens doc.txt --target-tokens code.json --out attention_example_1.png
  attnscope plot alignment-entropy --attention a0.npy --attention a1.npy --out attention_entropy_analysis.png`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "list" && len(args) == 1 {
				return listFigureKinds(cmd)
			}
			k, err := report.LookupFigure(args[0])
			if err != nil {
				return usagef(cmd, "%v", err)
			}
			dir := ""
			if len(args) == 2 {
				dir = args[1]
			}
			return runPlot(cmd, k, dir, f)
		},
	}
	addPlotFlags(cmd.Flags(), &f)
	return cmd
}

// figureKindsHelp lists the figure kinds of the registry with their help.
func figureKindsHelp() string {
	var b strings.Builder
	for _, k := range report.Figures() {
		fmt.Fprintf(&b, "  %-17s %s\n", k.Name, k.Help)
	}
	return b.String()
}

// listFigureKinds prints every figure kind: what it reads, its flags and its use in
// the HTML report.
func listFigureKinds(cmd *cobra.Command) error {
	out := cmd.OutOrStdout()
	for _, k := range report.Figures() {
		use := "drawn by default"
		switch {
		case !k.InReport():
			use = "not drawn: " + k.NotInReport
		case !k.InDefaultReport():
			use = "drawn when chosen with --figures " + k.Name
		}
		fmt.Fprintf(out, "%s\n  %s\n  reads: %s\n  flags: %s\n  report: %s\n", k.Name, k.Help, k.Needs, k.FlagList(), use)
	}
	return nil
}

func addPlotFlags(fl *pflag.FlagSet, f *plotFlags) {
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
	fl.StringVar(&f.rows, "rows", "", "heatmap, grid: only query positions A:B (half-open, e.g. 30000:30200), weight by weight up to 512 a side, max-pooled above")
	fl.StringVar(&f.cols, "cols", "", "heatmap, grid: only key positions A:B (half-open, e.g. 0:500), as --rows")
	fl.BoolVar(&f.crop, "crop", false, "alignment: accept token counts that differ from the matrix shape and draw min(tokens, rows or columns, 30), as plot_attention does")
}

// checkPlotFlags refuses a flag the figure kind does not read (it would be ignored).
func checkPlotFlags(cmd *cobra.Command, k *report.FigureKind) error {
	var bad []string
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if f.Name != "sample" && f.Name != "out" && f.Name != "dpi" && !slices.Contains(k.Options, f.Name) {
			bad = append(bad, "--"+f.Name)
		}
	})
	if len(bad) > 0 {
		return usagef(cmd, "plot %s does not use %s (it reads %s)", k.Name, strings.Join(bad, ", "), k.FlagList())
	}
	return nil
}

// runPlot draws figure kind k of the run dir (or of files, dir "") into --out.
func runPlot(cmd *cobra.Command, k *report.FigureKind, dir string, f plotFlags) error {
	fromFiles := k.DrawFiles != nil && len(f.attention) > 0
	switch {
	case fromFiles && dir != "":
		return usagef(cmd, "%s with --attention takes no RUN argument", k.Name)
	case !fromFiles && dir == "":
		return usagef(cmd, "plot %s needs a RUN folder", k.Name)
	}
	if err := checkPlotFlags(cmd, k); err != nil {
		return err
	}
	o, err := plotOptions(cmd, k, f)
	if err != nil {
		return err
	}
	if err := prepareOutDir(f.out); err != nil {
		return err
	}
	var d *report.Drawing
	if fromFiles {
		d, err = k.DrawFiles(o)
	} else {
		d, err = drawFromRun(cmd, k, dir, o)
	}
	if report.IsOptionError(err) {
		return usagef(cmd, "%v", err)
	}
	if err != nil {
		return err
	}
	return writeDrawing(cmd, k, f, d)
}

// drawFromRun draws kind k of --sample (default the first) of the run dir.
func drawFromRun(cmd *cobra.Command, k *report.FigureKind, dir string, o report.FigureOptions) (*report.Drawing, error) {
	run, err := report.OpenRun(dir)
	if err != nil {
		return nil, err
	}
	if k.Needs.RunLevel {
		return k.Draw(cmd.Context(), run, "", o)
	}
	id, err := plotSample(run, o.Sample)
	if err != nil {
		return nil, err
	}
	return k.Draw(cmd.Context(), run, id, o)
}

// writeDrawing writes the figure to --out (an HTML page for .html where the kind has
// one) and the files beside it, and reports them.
func writeDrawing(cmd *cobra.Command, k *report.FigureKind, f plotFlags, d *report.Drawing) error {
	out := cmd.OutOrStdout()
	if d.Console != "" {
		fmt.Fprintln(out, d.Console)
	}
	if k.HTMLPage && strings.EqualFold(filepath.Ext(f.out), ".html") {
		return writeOut(cmd, f.out, d.HTMLPage)
	}
	d.Figure.DPI = f.dpi
	if err := d.Figure.Save(f.out); err != nil {
		return err
	}
	wrote := []string{f.out}
	for _, b := range d.Beside {
		path := filepath.Join(filepath.Dir(f.out), b.Name)
		if err := atomicfile.WriteWith(path, b.Write); err != nil {
			return err
		}
		wrote = append(wrote, path)
	}
	if n := len(wrote); n > 1 {
		fmt.Fprintf(out, "wrote %s and %s\n", strings.Join(wrote[:n-1], ", "), wrote[n-1])
		return nil
	}
	fmt.Fprintf(out, "wrote %s\n", f.out)
	return nil
}

// plotOptions checks the flags' values and returns them as the figure's options.
func plotOptions(cmd *cobra.Command, k *report.FigureKind, f plotFlags) (report.FigureOptions, error) {
	fl := cmd.Flags()
	o := report.FigureOptions{Sample: f.sample, Layer: f.layer, Head: f.head, Query: f.query, Tokens: f.tokens,
		Clip: f.clip, Pass: f.pass, Labels: f.labels, ByLayer: f.byLayer, Mass: f.mass, TopK: f.topK,
		Attention: f.attention, SourceTokens: f.srcTokens, TargetTokens: f.trgTokens, Crop: f.crop, Given: fl.Changed}
	if err := checkPlotArgs(cmd, k, f); err != nil {
		return o, err
	}
	dist, err := code.ParseDistribution(f.dist)
	if err != nil {
		return o, usagef(cmd, "--dist: %v", err)
	}
	o.Dist = dist
	if o.Rows, err = plotSpan(cmd, "rows", f.rows); err != nil {
		return o, err
	}
	if o.Cols, err = plotSpan(cmd, "cols", f.cols); err != nil {
		return o, err
	}
	if !fl.Changed("head") {
		if o.Head, err = report.HeadReduction(cmp.Or(f.reduce, "mean")); err != nil {
			return o, usagef(cmd, "--reduce: %v", err)
		}
	}
	return o, nil
}

// plotSpan parses --rows or --cols (the zero Span, the whole axis, when not given).
func plotSpan(cmd *cobra.Command, flag, text string) (store.Span, error) {
	if !cmd.Flags().Changed(flag) {
		return store.Span{}, nil
	}
	s, err := store.ParseSpan(text)
	if err != nil {
		return s, usagef(cmd, "--%s %v", flag, err)
	}
	return s, nil
}

// checkPlotArgs checks the flags' values.
func checkPlotArgs(cmd *cobra.Command, k *report.FigureKind, f plotFlags) error {
	fl := cmd.Flags()
	switch {
	case f.out == "":
		return usagef(cmd, "--out is required")
	case k.Needs.Pass == report.PassRequired && f.pass == "":
		return usagef(cmd, "plot %s needs --pass NAME (the derive pass whose output to draw)", k.Name)
	case f.tokens != "" && fl.Changed("query"):
		return usagef(cmd, "--query and --tokens exclude each other")
	case fl.Changed("reduce") && fl.Changed("head"):
		return usagef(cmd, "--head and --reduce exclude each other")
	case f.clip < 0 || f.clip >= 100:
		return usagef(cmd, "--clip %v: a percentile in [0, 100) expected", f.clip)
	case f.dpi < 10 || f.dpi > 1200:
		return usagef(cmd, "--dpi %d: between 10 and 1200 expected", f.dpi)
	case fl.Changed("head") && f.head < 0:
		return usagef(cmd, "--head %d: heads are numbered from 0", f.head)
	case fl.Changed("layer") && f.layer < 0:
		return usagef(cmd, "--layer %d: layers are numbered from 0", f.layer)
	case slices.Contains(k.Options, "top-k") && f.topK < 1:
		return usagef(cmd, "--top-k %d: at least 1 expected", f.topK)
	}
	if !(k.HTMLPage && strings.EqualFold(filepath.Ext(f.out), ".html")) {
		if _, err := viz.FormatOf(f.out); err != nil {
			return usagef(cmd, "%v", err)
		}
	}
	return nil
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
