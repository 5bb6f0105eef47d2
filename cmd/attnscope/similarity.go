package main

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/internal/progress"
	"github.com/attnscope/attnscope/similarity/runs"
	"github.com/attnscope/attnscope/stats"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/viz"
)

type similarityFlags struct {
	opt              runs.SimilarityOptions
	feature, pass    string
	csvPath, figPath string
	bca              bool
	level            float64
	seed             uint64
}

func newSimilarityCmd() *cobra.Command {
	var f similarityFlags
	cmd := &cobra.Command{
		Use:   "similarity RUN_A RUN_B",
		Short: "Layer × layer representation similarity between two runs (CKA, PWCCA, SVCCA)",
		Long: `similarity compares every layer of RUN_A with every layer of RUN_B on the same
samples, the tokens of all samples stacked (row i of one run is row i of the other):
linear or RBF CKA (Kornblith et al. 2019), minibatch CKA with the unbiased HSIC
estimator (Nguyen et al. 2021), PWCCA (Morcos et al. 2018, BERT-non-text's pyrcca form;
--uncentred reproduces it exactly) or SVCCA (Raghu et al. 2017). --feature hidden uses
the residual stream after each block (capture --hidden), attention each token's
attention rows of all heads. Runs with different samples or token counts are refused.
The matrix is stored in RUN_A as the run-level output <pass> (run-outputs/<pass>/, with
--bootstrap also <pass>_interval; with --per-sample each sample's matrix in
derived/<pass>/), with its axes, which report and serve draw, and written as CSV and a
heatmap; --bootstrap N adds a token-bootstrap confidence interval per cell.`,
		Example: `  attnscope similarity runs/bert runs/bert-scratch --measure pwcca --reg 1e-4
  attnscope similarity runs/a runs/b --measure linear-cka --bootstrap 1000 --figure cka.png`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error { return runSimilarity(cmd, args, &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.opt.Measure, "measure", "linear-cka", "measure: "+strings.Join(runs.Measures, ", "))
	fl.StringVar(&f.feature, "feature", "hidden", "hidden (resid_post of each block) or attention")
	fl.IntVar(&f.opt.MaxTokens, "max-tokens", 0, "keep the first N stacked tokens (BERT-non-text: 1000; 0: all)")
	fl.Float64Var(&f.opt.PWCCA.Reg, "reg", 0, "pwcca: pyrcca regularisation added to XᵀX and YᵀY")
	fl.BoolVar(&f.opt.PWCCA.Uncentred, "uncentred", false, "pwcca: do not centre (the original's exact form)")
	fl.Float64Var(&f.opt.SVCCA.Variance, "variance", 0.99, "svcca: fraction of variance the kept directions explain")
	fl.IntVar(&f.opt.SVCCA.Dims, "dims", 0, "svcca: keep this many directions instead (0: by --variance)")
	fl.Float64Var(&f.opt.Threshold, "threshold", 1, "rbf: bandwidth as a fraction of the median distance")
	fl.BoolVar(&f.opt.RBF, "rbf", false, "minibatch-cka: RBF kernel instead of linear")
	fl.IntVar(&f.opt.Batch, "batch", 512, "minibatch-cka: tokens per minibatch")
	fl.IntVar(&f.opt.Bootstrap, "bootstrap", 0, "token-bootstrap resamples for confidence intervals (0: none)")
	fl.Float64Var(&f.level, "level", 0.95, "bootstrap confidence level")
	fl.BoolVar(&f.bca, "bca", false, "bootstrap: BCa interval instead of percentile (one more evaluation per token)")
	fl.Uint64Var(&f.seed, "seed", 1, "bootstrap seed")
	fl.BoolVar(&f.opt.PerSample, "per-sample", false, "also compare each sample's tokens alone (one derived output per sample)")
	fl.StringVar(&f.pass, "pass", "", "derived pass name in RUN_A (default similarity_<measure>_<RUN_B name>)")
	fl.StringVar(&f.csvPath, "csv", "", "CSV output (default <pass>.csv)")
	fl.StringVar(&f.figPath, "figure", "", "heatmap (.png, .svg, .pdf; default <pass>.png)")
	return cmd
}

// passName is a derived pass name from a prefix and a run folder's name.
func passName(prefix, dir string) string {
	return store.SampleID(prefix + "_" + filepath.Base(filepath.Clean(dir)))
}

func runSimilarity(cmd *cobra.Command, args []string, f *similarityFlags) error {
	f.opt.Feature = runs.Feature(f.feature)
	if f.opt.Feature != runs.Hidden && f.opt.Feature != runs.Attention {
		return usagef(cmd, "--feature %q: hidden or attention expected", f.feature)
	}
	if !slices.Contains(runs.Measures, f.opt.Measure) {
		return usagef(cmd, "--measure %q: one of %s expected", f.opt.Measure, strings.Join(runs.Measures, ", "))
	}
	f.opt.Interval = stats.BootstrapOptions{Level: f.level, Method: stats.Percentile, Seed: f.seed}
	if f.bca {
		f.opt.Interval.Method = stats.BCa
	}
	if f.pass == "" {
		f.pass = passName("similarity_"+strings.ReplaceAll(f.opt.Measure, "-", "_"), args[1])
	}
	if err := store.CheckSampleID(f.pass); err != nil {
		return usagef(cmd, "--pass: %v", err)
	}
	f.csvPath = cmpOr(f.csvPath, f.pass+".csv")
	f.figPath = cmpOr(f.figPath, f.pass+".png")
	if _, err := viz.FormatOf(f.figPath); err != nil {
		return usagef(cmd, "--figure: %v", err)
	}
	p, err := openPair(args[0], args[1])
	if err != nil {
		return err
	}
	var end func()
	f.opt.Progress, end = countProgress(cmd.ErrOrStderr(), "similarity", "layer pairs")
	res, err := runs.Similarity(cmd.Context(), p, f.opt)
	end()
	if err != nil {
		return err
	}
	kw := similarityKwargs(f, args[1], res.Tokens)
	if err := runs.WriteSimilarity(p, f.pass, res, f.opt, kw); err != nil {
		return err
	}
	if err := atomicfile.WriteWith(f.csvPath, func(w io.Writer) error { return runs.WriteSimilarityCSV(w, res) }); err != nil {
		return err
	}
	fig, err := similarityFigure(res, f, args)
	if err != nil {
		return err
	}
	if err := fig.Save(f.figPath); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s over %d tokens of %d samples: %d×%d layers → %s, %s, %s\n", f.opt.Measure, res.Tokens, len(p.Samples),
		len(res.RowNames), len(res.ColNames), p.A.RunOutputPath(f.pass), f.csvPath, f.figPath)
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func openPair(a, b string) (*runs.Pair, error) {
	ra, err := store.Open(a)
	if err != nil {
		return nil, err
	}
	rb, err := store.Open(b)
	if err != nil {
		return nil, err
	}
	return runs.OpenPair(ra, rb)
}

// similarityFigure draws the layer × layer matrix as a heatmap (rows: RUN_A).
func similarityFigure(res *runs.SimilarityResult, f *similarityFlags, args []string) (*viz.Figure, error) {
	m, err := viz.NewMatrix(len(res.RowNames), len(res.ColNames), res.Values)
	if err != nil {
		return nil, err
	}
	short := func(names []string) []string {
		out := make([]string, len(names))
		for i := range names {
			out[i] = fmt.Sprintf("L%d", i)
		}
		return out
	}
	return viz.Heatmap(m, viz.HeatmapOptions{
		Title:  fmt.Sprintf("%s (%s), %d tokens", f.opt.Measure, f.feature, res.Tokens),
		YLabel: "layer of " + filepath.Base(args[0]), XLabel: "layer of " + filepath.Base(args[1]),
		RowLabels: short(res.RowNames), ColLabels: short(res.ColNames), ColorbarLabel: f.opt.Measure,
		VMin: 0, VMax: 1, CellLines: true,
	})
}

// countProgress reports done/total units through internal/progress, starting the
// tracker at the first report, when the total is known; end closes it.
func countProgress(w io.Writer, name, unit string) (report func(done, total int), end func()) {
	var tr *progress.Tracker
	seen := 0
	report = func(done, total int) {
		if tr == nil {
			tr = progress.New(w, name, unit, total)
		}
		tr.Finish(fmt.Sprintf("%d/%d", done, total), done-seen, "")
		seen = done
	}
	return report, func() {
		if tr != nil {
			tr.Close()
		}
	}
}

// similarityKwargs records the settings that made the matrix (those of its measure)
// in pass.json.
func similarityKwargs(f *similarityFlags, runB string, tokens int) map[string]any {
	kw := map[string]any{"run_b": runB, "feature": f.feature, "tokens": tokens, "max_tokens": f.opt.MaxTokens, "bootstrap": f.opt.Bootstrap}
	switch f.opt.Measure {
	case "pwcca":
		kw["reg"], kw["uncentred"] = f.opt.PWCCA.Reg, f.opt.PWCCA.Uncentred
	case "svcca":
		kw["variance"], kw["dims"] = f.opt.SVCCA.Variance, f.opt.SVCCA.Dims
	case "rbf-cka":
		kw["threshold"] = f.opt.Threshold
	case "minibatch-cka":
		kw["batch"], kw["rbf"] = f.opt.Batch, f.opt.RBF
		if f.opt.RBF {
			kw["threshold"] = f.opt.Threshold
		}
	}
	if f.opt.Bootstrap > 0 {
		kw["level"], kw["bca"], kw["seed"] = f.level, f.bca, f.seed
	}
	return kw
}
