package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/similarity/runs"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/viz"
)

type matchFlags struct {
	quirk            bool
	prefix           string
	csvPath, figPath string
}

func newMatchHeadsCmd() *cobra.Command {
	var f matchFlags
	cmd := &cobra.Command{
		Use:   "match-heads RUN_A RUN_B [RUN_C ...]",
		Short: "Match the attention heads of runs to RUN_A's by L1 cost (Hungarian assignment)",
		Long: `match-heads compares each further run with RUN_A on the same samples (same token
counts), as BERT-non-text's matching.py: for every layer and sample, the L1 cost
C[a,b] = Σ|Y_a − X_b| between head a of the other run and head b of RUN_A, the
assignment of minimum total cost (exact Hungarian algorithm) and its total. Per layer
it reports the mean and population std of the totals over samples, draws them as
mean ± std bands (layers on x, one band per compared run), writes a CSV, stores
each sample's matched cost per head and assignment in RUN_A/derived/<pass>/ with axes
[layer, head], and the per-sample totals and per-layer mean and std as the run-level
outputs <pass>_totals and <pass>_summary (which report and serve draw). --quirk plots the original's value instead (its total indexes samples
with head numbers; it needs at least as many samples as heads).`,
		Example: `  attnscope match-heads runs/bert runs/plus runs/bert-scratch --figure match.png`,
		Args:    cobra.MinimumNArgs(2),
		RunE:    func(cmd *cobra.Command, args []string) error { return runMatchHeads(cmd, args, &f) },
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.quirk, "quirk", false, "plot the original's (mis-indexed) value instead of the intended totals")
	fl.StringVar(&f.prefix, "pass", "match_heads", "derived pass prefix in RUN_A (<prefix>_<run name>)")
	fl.StringVar(&f.csvPath, "csv", "match_heads.csv", "CSV of per-layer statistics")
	fl.StringVar(&f.figPath, "figure", "match_heads.png", "layer-wise figure (.png, .svg, .pdf)")
	return cmd
}

func runMatchHeads(cmd *cobra.Command, args []string, f *matchFlags) error {
	if _, err := viz.FormatOf(f.figPath); err != nil {
		return usagef(cmd, "--figure: %v", err)
	}
	var pairs []*runs.Pair
	for _, b := range args[1:] {
		p, err := openPair(args[0], b)
		if err != nil {
			return err
		}
		pairs = append(pairs, p)
	}
	var sums []runs.MatchSummary
	var bands []viz.Band
	for i, p := range pairs {
		report, end := countProgress(cmd.ErrOrStderr(), "match-heads "+filepath.Base(args[i+1]), "layer-samples")
		res, err := runs.MatchHeads(cmd.Context(), p, report)
		end()
		if err != nil {
			return err
		}
		mean, std, err := res.Summary(f.quirk)
		if err != nil {
			return fmt.Errorf("%s vs %s: %w", args[0], args[i+1], err)
		}
		name := filepath.Base(filepath.Clean(args[0])) + "–" + filepath.Base(filepath.Clean(args[i+1]))
		sums = append(sums, runs.MatchSummary{Run: args[i+1], Result: res})
		x := make([]float64, res.Layers)
		for l := range x {
			x[l] = float64(l + 1)
		}
		bands = append(bands, viz.Band{Name: name, X: x, Mean: mean, Std: std})
		for l := range mean {
			fmt.Fprintf(cmd.OutOrStdout(), "%s layer %d: mean %.6g, std %.6g over %d samples\n", name, l+1, mean[l], std[l], len(res.Samples))
		}
	}
	for i, s := range sums {
		kw := map[string]any{"run_b": args[i+1]}
		if err := runs.WriteMatch(pairs[i], passName(f.prefix, args[i+1]), s.Result, kw); err != nil {
			return err
		}
	}
	if err := atomicfile.WriteWith(f.csvPath, func(w io.Writer) error { return runs.WriteMatchCSV(w, sums) }); err != nil {
		return err
	}
	title := "Head matching (intended totals)"
	if f.quirk {
		title = "Head matching (original's value)"
	}
	fig, err := viz.MeanStdBands(bands, viz.BandsOptions{Title: title, XLabel: "layer", YLabel: "L1 distance", Scientific: true})
	if err != nil {
		return err
	}
	if err := fig.Save(f.figPath); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s, %s, derived outputs %s_* in %s and run outputs in %s\n", f.csvPath, f.figPath, f.prefix,
		filepath.Join(args[0], store.DerivedDir), filepath.Join(args[0], store.RunOutputDir))
	return nil
}
