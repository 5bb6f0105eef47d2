package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/report"
	"github.com/attnscope/attnscope/store"
)

func newReportCmd() *cobra.Command {
	var (
		out        string
		maxSamples int
		clip       float64
		dpi        int
		comps      string
		figures    []string
	)
	cmd := &cobra.Command{
		Use:   "report RUN [--out FILE.html]",
		Short: "Write one self-contained HTML report of a run (provenance, metrics, figures per sample)",
		Long: `report writes a single HTML file summarising the run folder RUN: its provenance
(run.json), per-layer and per-head tables of the metrics table (metrics.csv, written by
attnscope derive), and a section per sample with the all-heads grid, the last layer's
heatmap, attention received, entropy and maximum-weight histograms, the code heatmap,
and the attention-analysis dashboard with its text report when hidden states were
captured. Figures are inlined; the file loads nothing from the network and runs no
script, so it can be mailed, archived or attached to a review as is. --figures picks figure
kinds (those of attnscope plot list that the report draws) or derive passes. Progress goes
to stderr: a bar on a terminal, otherwise a line per sample with elapsed time and ETA.`,
		Example: `  attnscope report runs/gpt2-code
  attnscope report runs/gpt2-code --out gpt2-code.html --max-samples 5 --clip 99.9`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReport(cmd, args[0], out, report.HTMLOptions{MaxSamples: maxSamples, ClipPercentile: clip, DPI: dpi, Figures: figures, Comparisons: comps})
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "output HTML file (default RUN/report.html)")
	cmd.Flags().IntVar(&maxSamples, "max-samples", 0, "sections for at most this many samples (0: all)")
	cmd.Flags().Float64Var(&clip, "clip", 0, "clip heatmap colour scales at this percentile (e.g. 99.9; 0: none)")
	cmd.Flags().IntVar(&dpi, "dpi", 110, "resolution of the inlined figures")
	cmd.Flags().StringVar(&comps, "comparisons", "", "folder of attnscope compare outputs to summarise in a Comparisons section")
	cmd.Flags().StringSliceVar(&figures, "figures", nil, "figures of each sample, by name ("+strings.Join(report.ReportFigureNames(), ", ")+") or derive pass name, comma-separated (default: all but "+
		strings.Join(report.FigureNames(func(k *report.FigureKind) bool { return k.InReport() && !k.InDefaultReport() }), ", ")+", derive outputs for the first sample only)")
	return cmd
}

// runReport writes the HTML report of the run dir to out (default dir/report.html).
func runReport(cmd *cobra.Command, dir, out string, opts report.HTMLOptions) error {
	if out == "" {
		out = filepath.Join(dir, "report.html")
	}
	if filepath.Ext(out) != ".html" && filepath.Ext(out) != ".htm" {
		return usagef(cmd, "--out %s: an .html file expected", out)
	}
	if opts.MaxSamples < 0 {
		return usagef(cmd, "--max-samples %d: 0 (all) or more expected", opts.MaxSamples)
	}
	if opts.ClipPercentile < 0 || opts.ClipPercentile >= 100 {
		return usagef(cmd, "--clip %v: a percentile in [0, 100) expected", opts.ClipPercentile)
	}
	if opts.DPI < 30 || opts.DPI > 600 {
		return usagef(cmd, "--dpi %d: between 30 and 600 expected", opts.DPI)
	}
	if store.IsS3(dir) && out == filepath.Join(dir, "report.html") {
		return usagef(cmd, "give --out (a local .html file) for a run in object storage")
	}
	// An s3:// run: its small files are downloaded, then only the tensors, layers
	// and derived outputs the figures draw are read (store.OpenRead).
	run, err := store.OpenRead(cmd.Context(), dir)
	if err != nil {
		return err
	}
	if err := prepareOutDir(out); err != nil {
		return err
	}
	stderr := cmd.ErrOrStderr()
	passes, err := run.DerivedPasses()
	if err != nil {
		return err
	}
	if err := report.CheckFigures(opts.Figures, passes); err != nil {
		return usagef(cmd, "--figures: %v", err)
	}
	var done func()
	opts.Progress, done = reportProgress(stderr)
	err = atomicfile.WriteWith(out, func(w io.Writer) error {
		return report.WriteHTML(cmd.Context(), w, run, opts)
	})
	done()
	if err != nil {
		return err
	}
	if st, err := os.Stat(out); err == nil {
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%.1f MB)\n", out, float64(st.Size())/1e6)
	}
	return nil
}
