package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/demo"
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
			return runEvaluate(cmd, args, out, backend, dropLast, nFig)
		},
	}
	c.Flags().StringVar(&out, "out", "", "output folder for results.json, summary.csv, samples.csv")
	c.Flags().StringVar(&backend, "backend", "", "GoMLX backend (default $GOMLX_BACKEND, else "+train.DefaultBackend+")")
	c.Flags().IntVar(&nFig, "figures", 5, "with evaluation.visualize: samples per dataset drawn into OUT/visualizations")
	c.Flags().BoolVar(&dropLast, "drop-last", false, "skip samples that do not fill a last batch, as the original's DataLoader(drop_last=True)")
	return c
}

// runEvaluate trains (unless the config says not to) and evaluates the experiment args[0].
func runEvaluate(cmd *cobra.Command, args []string, out, backend string, dropLast bool, nFig int) error {
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
			return demo.DrawReference(figDir, fmt.Sprintf("%s_%s_%03d", e.Evaluation.Name, ds, i), s, demo.AttentionTensor(attn, len(s.InputIDs)))
		}
	}
	var endProgress func()
	opts.OnSample, endProgress = evalProgress(cmd.ErrOrStderr(), e, opts.OnSample)
	rep, err := train.Evaluate(ctx, e, cfg, w, opts)
	endProgress()
	if err != nil {
		return err
	}
	if err := demo.WriteReport(out, rep); err != nil {
		return err
	}
	demo.PrintReport(cmd.OutOrStdout(), rep)
	fmt.Fprintf(cmd.OutOrStdout(), "results in %s\n", out)
	return nil
}
