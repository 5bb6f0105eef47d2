package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/evaluate"
	"github.com/attnscope/attnscope/tasks"
	"github.com/attnscope/attnscope/train"
)

func newEvaluateCmd() *cobra.Command {
	var (
		out, backend string
		dropLast     bool
		nFig         int
	)
	c := &cobra.Command{
		Use:   "evaluate CONFIG.yaml [key=value ...]",
		Short: "Train (unless training=null) and evaluate a model in and out of distribution, AttentionSpan style",
		Long: `Runs an AttentionSpan experiment like evaluate_transformers_model.py: trains the model
when the config has a training section (training=null evaluates the checkpoint named by
model.checkpoint_filepath with model.load_from_checkpoint=true), then evaluates
evaluation.dataset1 (in distribution) and evaluation.dataset2 (out of distribution):
teacher-forced exact-match accuracy, piecewise accuracy and error positions, the share
of rollout-aggregated attention on reference tokens (mean, variance, 95% CI), its
correct-versus-wrong comparison, and the Welch test between the two datasets. Results go
to --out as results.json, summary.csv and samples.csv; with evaluation.visualize, the
reference-token figures of the first --figures samples go to --out/visualizations.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usagef(cmd, "--out is required")
			}
			e, err := train.LoadExperiment(args[0], args[1:])
			if err != nil {
				return err
			}
			if e.Evaluation == nil {
				return fmt.Errorf("%s: the config has no evaluation section", args[0])
			}
			be, err := train.Backend(backend)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var cfg train.ModelConfig
			var w [][]float32
			if e.Training != nil {
				res, err := train.RunTraining(ctx, e, train.RunOptions{Backend: be, Log: cmd.ErrOrStderr()})
				if err != nil {
					return err
				}
				cfg, w = res.Config, res.Weights
			} else if cfg, w, err = train.NewModel(e, train.Tokenizer()); err != nil {
				return err
			}
			opts := train.EvalOptions{Backend: be, DropLast: dropLast}
			if e.Evaluation.Visualize {
				// The original draws every sample of batch-size-1 runs; here the first
				// --figures samples of each dataset are drawn.
				figDir := filepath.Join(out, "visualizations")
				if err := os.MkdirAll(figDir, 0o755); err != nil {
					return err
				}
				opts.OnSample = func(ds string, i int, s *tasks.Sample, _ []int, attn [][][]float32) error {
					if i >= nFig || s.Labels == nil {
						return nil
					}
					return drawReference(figDir, fmt.Sprintf("%s_%s_%03d", e.Evaluation.Name, ds, i), s, float64Attention(attn, len(s.InputIDs)))
				}
			}
			var endProgress func()
			opts.OnSample, endProgress = evalProgress(cmd.ErrOrStderr(), e, opts.OnSample)
			rep, err := train.Evaluate(ctx, e, cfg, w, opts)
			endProgress()
			if err != nil {
				return err
			}
			if err := writeReport(out, rep); err != nil {
				return err
			}
			printReport(cmd.OutOrStdout(), rep)
			fmt.Fprintf(cmd.OutOrStdout(), "results in %s\n", out)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "output folder for results.json, summary.csv, samples.csv")
	c.Flags().StringVar(&backend, "backend", "", "GoMLX backend (default $GOMLX_BACKEND, else "+train.DefaultBackend+")")
	c.Flags().IntVar(&nFig, "figures", 5, "with evaluation.visualize: samples per dataset drawn into OUT/visualizations")
	c.Flags().BoolVar(&dropLast, "drop-last", false, "skip samples that do not fill a last batch, as the original's DataLoader(drop_last=True)")
	return c
}

func writeReport(dir string, rep *evaluate.Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := rep.WriteJSON(filepath.Join(dir, "results.json")); err != nil {
		return err
	}
	return rep.WriteCSV(dir)
}

func printReport(w io.Writer, rep *evaluate.Report) {
	for _, d := range []*evaluate.DatasetResult{rep.ID, rep.OOD} {
		fmt.Fprintf(w, "%s: %d samples, exact-match accuracy %.1f%%, piecewise %.1f%%", d.Name, d.N, d.Accuracy, d.Piecewise.PiecewiseAccuracy)
		if e := d.AttentionEval; e != nil {
			fmt.Fprintf(w, ", attention on reference tokens %.3f (95%% CI %.3f–%.3f, %d rows)", e.Mean, e.CILower, e.CIUpper, e.N)
		}
		fmt.Fprintln(w)
	}
	if c := rep.Comparison; c != nil && c.TStat != nil {
		fmt.Fprintf(w, "dataset1 vs dataset2 reference attention: Welch t = %.3f, df = %.1f, p = %.3g\n", *c.TStat, *c.DF, *c.PValue)
	} else if rep.ComparisonError != "" {
		fmt.Fprintf(w, "dataset1 vs dataset2: %s\n", rep.ComparisonError)
	}
}
