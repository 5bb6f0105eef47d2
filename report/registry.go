package report

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/attnscope/attnscope/analysis/code"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/viz"
)

// FigureKind is one kind of figure attnscope draws. The kinds of Figures are the one
// catalogue that attnscope plot (its kinds, their help and the flags each accepts) and
// the HTML report (the figures of a sample section, and the names of report --figures)
// both read.
type FigureKind struct {
	// Name is the plot kind and the report --figures name.
	Name string
	// Help is one line for attnscope plot's list of kinds.
	Help string
	// Needs is what the figure reads.
	Needs Needs
	// Options are the options the figure reads, by their attnscope plot flag names,
	// besides --sample, --out and --dpi; plot refuses any other (it would be ignored).
	Options []string
	// HTMLPage: the figure can also be written as a self-contained HTML page
	// (attnscope plot --out FILE.html).
	HTMLPage bool
	// Draw draws the figure of sample id of run (plot, and the report's sections unless
	// the kind draws its own; nil: report only, see NotInPlot).
	Draw func(ctx context.Context, run Run, id string, o FigureOptions) (*Drawing, error)
	// DrawFiles draws the figure from Options.Attention files without a run (nil: it
	// needs a run).
	DrawFiles func(o FigureOptions) (*Drawing, error)
	// NotInPlot says why plot does not draw the kind (Draw is nil).
	NotInPlot string
	// NotInReport says why the HTML report does not draw the kind (no report use).
	NotInReport string

	report *reportUse
}

// PassUse says whether a figure reads a derive pass's output (--pass).
type PassUse int

// Uses of a derive pass's output.
const (
	PassNone     PassUse = iota // no pass
	PassOptional                // attention, or --pass's output instead
	PassRequired                // --pass's output (the report: every pass's)
)

// Needs is what a figure kind reads from a run (or files).
type Needs struct {
	Attention  bool    // the sample's captured attention
	Hidden     bool    // hidden states (capture --hidden)
	Text       bool    // the sample's text with token offsets
	Generation bool    // a generation: generated tokens after a prompt
	AllSamples bool    // every sample of the run (or --sample's)
	Pass       PassUse // a derive pass's output
	PassAxes   string  // the declared axes of the pass output it can draw
	Labels     bool    // a labels file (--labels)
	Files      bool    // can draw from --attention files instead of a run
	RunLevel   bool    // the run as a whole (its run-level outputs), no sample
}

// String says in words what the figure reads.
func (n Needs) String() string {
	var parts []string
	add := func(ok bool, s string) {
		if ok {
			parts = append(parts, s)
		}
	}
	add(n.Attention, "attention")
	add(n.Hidden, "hidden states (capture --hidden)")
	add(n.Text, "text with token offsets")
	add(n.Generation, "a generation (prompt + generated tokens)")
	add(n.AllSamples, "every sample")
	add(n.Pass == PassOptional, "or a derive pass (--pass) with axes "+n.PassAxes)
	add(n.Pass == PassRequired, "a derive pass (--pass) with axes "+n.PassAxes)
	add(n.Labels, "a labels file (--labels)")
	add(n.Files, "or --attention files without a run")
	add(n.RunLevel, "the run as a whole (no sample)")
	return strings.Join(parts, ", ")
}

// FigureOptions are the settings of one figure: attnscope plot's flags, or the
// report's defaults (DefaultFigureOptions).
type FigureOptions struct {
	// Sample is the sample asked for ("": the default; alignment-entropy then reads
	// every sample).
	Sample string
	// Layer < 0 is the last layer.
	Layer int
	// Head is a head (≥ 0) or a reduction of the heads (MeanHeads, SumHeads, ...).
	Head          int
	Query         int // code: query position (< 0: the last prompt token)
	Tokens        string
	Dist          code.Distribution
	Clip          float64
	Pass          string
	Labels        string
	ByLayer, Mass bool
	TopK          int
	// Attention, SourceTokens, TargetTokens and Crop are the alignment figures' files.
	Attention                  []string
	SourceTokens, TargetTokens string
	Crop                       bool
	// Rows and Cols draw only a window of the attention matrix, query positions Rows
	// × key positions Cols (heatmap, grid); the zero Span is the whole axis.
	Rows, Cols store.Span
	// Given reports whether an option (by its plot flag name) was set explicitly; nil:
	// none was.
	Given func(name string) bool
}

// DefaultFigureOptions are the report's settings: the last layer, the mean of heads,
// the last prompt token's code heatmap, 3 graph targets per token.
func DefaultFigureOptions() FigureOptions {
	return FigureOptions{Layer: -1, Head: MeanHeads, Query: -1, TopK: 3, Dist: code.Replication}
}

func (o FigureOptions) given(name string) bool { return o.Given != nil && o.Given(name) }

// Drawing is what a figure kind draws: a figure, and for some kinds an HTML page, files
// written beside the figure and lines for the console.
type Drawing struct {
	Figure *viz.Figure
	// HTMLPage, for kinds with FigureKind.HTMLPage, writes the figure as a
	// self-contained HTML page.
	HTMLPage func(io.Writer) error
	// Beside are files written in the figure's folder (the dashboard's text report and
	// JSON summary).
	Beside []BesideFile
	// Console is printed before the figure is written (summaries, statistics).
	Console string
}

// BesideFile is a file written beside a figure.
type BesideFile struct {
	Name  string
	Write func(io.Writer) error
}

// OptionError is a figure option that does not fit the figure or its input (a usage
// error: attnscope plot exits with status 2).
type OptionError struct{ err error }

func (e *OptionError) Error() string { return e.err.Error() }
func (e *OptionError) Unwrap() error { return e.err }

func optionErrorf(format string, a ...any) error {
	return &OptionError{fmt.Errorf(format, a...)}
}

// IsOptionError reports whether err is (or wraps) an OptionError.
func IsOptionError(err error) bool {
	var oe *OptionError
	return errors.As(err, &oe)
}

// Figures returns the figure kinds in the order of a report's sample section.
func Figures() []*FigureKind { return slices.Clone(figureKinds) }

// LookupFigure returns the kind name, or an error listing the kinds.
func LookupFigure(name string) (*FigureKind, error) {
	for _, k := range figureKinds {
		if k.Name == name {
			return k, nil
		}
	}
	return nil, fmt.Errorf("unknown figure kind %q (want one of %s)", name, strings.Join(FigureNames(nil), ", "))
}

// FigureNames returns the names of the kinds for which keep is true (all when nil).
func FigureNames(keep func(*FigureKind) bool) []string {
	var out []string
	for _, k := range figureKinds {
		if keep == nil || keep(k) {
			out = append(out, k.Name)
		}
	}
	return out
}

// InReport reports whether the HTML report draws the kind (by default or when chosen
// with --figures).
func (k *FigureKind) InReport() bool { return k.report != nil }

// InDefaultReport reports whether a report without --figures draws the kind.
func (k *FigureKind) InDefaultReport() bool { return k.report != nil && !k.report.optIn }

// ReportFigureNames names the kinds the report draws, for HTMLOptions.Figures and
// attnscope report --figures (besides derive pass names).
func ReportFigureNames() []string { return FigureNames((*FigureKind).InReport) }

// FlagList lists the options a kind reads, for its help and errors.
func (k *FigureKind) FlagList() string {
	if len(k.Options) == 0 {
		return "only --sample, --out and --dpi"
	}
	out := make([]string, len(k.Options))
	for i, f := range k.Options {
		out[i] = "--" + f
	}
	return strings.Join(out, ", ") + " besides --sample, --out and --dpi"
}

// reportUse is how the HTML report draws a kind in a sample section.
type reportUse struct {
	// title is the caption of the one figure Draw draws with the report's options.
	title func(sc *section) string
	// when reports whether the sample has what the figure needs (nil: always).
	when func(sc *section) bool
	// draw, when set, adds the kind's figures itself (instead of title and Draw).
	draw func(sc *section) error
	// firstSample: a report without --figures draws it for the first sample only.
	firstSample bool
	// optIn: drawn only when chosen with --figures.
	optIn bool
	// whole: needs every weight of a layer (or of all layers) at once; noted, not
	// drawn, for a long --store qk sample.
	whole bool
	// byPass: also drawn when a derive pass is named in --figures.
	byPass bool
	// run, when set, draws the kind once per report from the run's run-level outputs
	// (RUN/run-outputs), in a section before the samples, instead of per sample.
	run func(rs *runSection) error
}

// figureKinds is the catalogue (figures_kinds.go has the draw functions).
var figureKinds = []*FigureKind{
	{Name: "grid", Help: "all layers × heads as thumbnails (BertViz's model view as a static figure)",
		Needs: Needs{Attention: true}, Options: []string{"clip", "rows", "cols"}, Draw: drawGrid,
		report: &reportUse{title: func(*section) string { return "All heads" }}},
	{Name: "heatmap", Help: "token × token attention of one layer and head (--head) or a reduction of the heads (--reduce, default mean)",
		Needs: Needs{Attention: true}, Options: []string{"layer", "head", "reduce", "clip", "rows", "cols"}, Draw: drawHeatmap,
		report: &reportUse{title: func(sc *section) string { return fmt.Sprintf("Layer %d, mean of heads", sc.layers-1) }}},
	{Name: "alignment", Help: "source × target heatmap (Text_to_Python's plot_attention, at most 30 × 30): a generation's generated × prompt tokens of a run, or --attention A.npy (steps × S) with --source-tokens and --target-tokens (no RUN)",
		Needs: Needs{Attention: true, Generation: true, Files: true}, Options: []string{"layer", "head", "reduce", "attention", "source-tokens", "target-tokens", "crop"},
		Draw: drawAlignment, DrawFiles: drawAlignmentFiles,
		report: &reportUse{when: (*section).generation, whole: true,
			title: func(sc *section) string {
				return fmt.Sprintf("Generated × prompt tokens, layer %d, mean of heads", sc.layers-1)
			}}},
	{Name: "alignment-entropy", Help: "histograms of the row entropy and maximum weight of alignment matrices, with means: every generation of a RUN (or --sample's), or --attention A.npy (repeatable; no RUN)",
		Needs: Needs{Attention: true, Generation: true, AllSamples: true, Files: true}, Options: []string{"attention", "layer", "head", "reduce"},
		Draw: drawAlignmentEntropy, DrawFiles: drawAlignmentEntropyFiles,
		NotInReport: "it summarises the alignments of every sample (or of files), not one sample's section"},
	{Name: "received", Help: "attention received per key position in one layer",
		Needs: Needs{Attention: true}, Options: []string{"layer", "head", "reduce"}, Draw: drawReceived,
		report: &reportUse{title: func(sc *section) string { return fmt.Sprintf("Attention received, layer %d", sc.layers-1) }}},
	{Name: "entropy", Help: "histograms of row entropy and maximum weight over all layers and heads, with means",
		Needs: Needs{Attention: true}, Draw: drawEntropy,
		report: &reportUse{title: func(*section) string { return "Entropy and maximum weight of attention rows" }}},
	{Name: "js", Help: "Jensen–Shannon distances between all (layer, head) units, or layers with --by-layer",
		Needs: Needs{Attention: true}, Options: []string{"by-layer"}, Draw: drawJS,
		report: &reportUse{when: (*section).square, draw: reportJS, whole: true}},
	{Name: "crispiness", Help: "each head's crispiness curve (--mass: cumulative-mass variant)",
		Needs: Needs{Attention: true}, Options: []string{"mass"}, Draw: drawCrispiness,
		report: &reportUse{when: func(sc *section) bool { return sc.square() && !sc.derivedFns["crispiness"] }, whole: true,
			title: func(*section) string { return "Crispiness of every head" }}},
	{Name: "code", Help: "the prompt's source text coloured by the attention of one query (.png/.svg/.pdf or .html)",
		Needs: Needs{Attention: true, Text: true}, Options: []string{"layer", "query", "tokens", "dist", "clip"}, HTMLPage: true, Draw: drawCode,
		report: &reportUse{when: (*section).code, draw: reportCode}},
	{Name: "code-weights", Help: "the code figure's character weights sorted against linspace(0, 1, n, endpoint=False): the \"cumulative distribution\" line (same flags as code but --clip)",
		Needs: Needs{Attention: true, Text: true}, Options: []string{"layer", "query", "tokens", "dist"}, Draw: drawCodeWeights,
		NotInReport: "the report's code figure includes the sorted character weights"},
	{Name: "derived", Help: "a derive pass's output (--pass NAME) drawn by the axes its function declares: heatmap, bars, curves or records; --layer/--head/--reduce select where it has layer and head axes",
		Needs: Needs{Pass: PassRequired, PassAxes: "any, as declared in pass.json"}, Options: []string{"pass", "layer", "head", "reduce", "clip"}, Draw: drawDerived,
		report: &reportUse{draw: reportDerived, firstSample: true, byPass: true}},
	{Name: "slices", Help: "every slice of a derive pass's output with 3 axes (5 columns) or [layer, head, N, M] (layers × heads): --pass NAME",
		Needs: Needs{Pass: PassRequired, PassAxes: "[slice, N, M] or [layer, head, N, M]"}, Options: []string{"pass", "clip"}, Draw: drawSlices,
		NotInReport: "it draws every slice of one pass chosen with --pass; the report draws each pass's output with derived"},
	{Name: "graph", Help: "layer-by-layer attention graph: each token's top-k (--top-k, 3) targets per layer, edges coloured by rank; --pass NAME draws a [layer, query, key] pass output (e.g. follow-up)",
		Needs: Needs{Attention: true, Pass: PassOptional, PassAxes: "[layer or layer pair, query, key]"}, Options: []string{"head", "reduce", "top-k", "pass"}, Draw: drawGraph,
		report: &reportUse{optIn: true, whole: true, title: func(*section) string { return "Attention graph, mean of heads, top 3 targets per token" }}},
	{Name: "reference", Help: "AttentionSpan reference cells outlined (--labels FILE.npy with 1/0/-100) on attention or a pass (--pass)",
		Needs: Needs{Attention: true, Labels: true, Pass: PassOptional, PassAxes: "a matrix after layer and head selection"}, Options: []string{"labels", "pass", "layer", "head", "reduce"},
		Draw: drawReference(viz.ReferenceOutline), NotInReport: "it needs a labels file (--labels) of the sample"},
	{Name: "reference-scores", Help: "AttentionSpan scores on the reference map (viridis), same inputs as reference",
		Needs: Needs{Attention: true, Labels: true, Pass: PassOptional, PassAxes: "a matrix after layer and head selection"}, Options: []string{"labels", "pass", "layer", "head", "reduce"},
		Draw: drawReference(viz.ReferenceScores), NotInReport: "it needs a labels file (--labels) of the sample"},
	{Name: "run-output", Help: "a run-level output (--pass NAME): similarity over every sample's tokens, head-matching summaries, diagnose spectra, histograms and LayerNorm std, drawn by the axes its pass.json declares",
		Needs: Needs{Pass: PassRequired, PassAxes: "any, as declared in run-outputs/NAME/pass.json", RunLevel: true}, Options: []string{"pass", "layer", "head", "reduce", "clip"}, Draw: drawRunOutput,
		report: &reportUse{run: reportRunOutputs}},
	{Name: "dashboard", Help: "the 12-panel attention-analysis dashboard, with attention_analysis_report.txt and attention_data_summary.json beside it (needs --hidden captures)",
		Needs: Needs{Attention: true, Hidden: true}, Draw: drawDashboard,
		report: &reportUse{draw: reportDashboard, whole: true}},
}
