package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/compute"
	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/demo"
	"github.com/attnscope/attnscope/evaluate"
	"github.com/attnscope/attnscope/internal/shard"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/tasks"
	"github.com/attnscope/attnscope/train"
)

func newEvaluateCmd() *cobra.Command {
	var (
		out, backend, hfModel, intervene string
		dropLast                         bool
		nFig                             int
		sh                               shard.Shard
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
reference-token figures of the first --figures samples go to --out/visualizations.

With --model DIR, the evaluated model is the Hugging Face causal LM in DIR (any family
capture supports) with its own tokenizer: BOS and EOS from its tokenizer_config.json and,
for datasets with apply_chat_template, its chat template rendered as the original does
(the config must set training=null).

With --intervene FILE, every evaluated forward pass applies the intervention (the YAML of
capture --intervene; no patch edits), and results.json records the file; a trained or
configured model then runs on the Hugging Face runtime of capture.

With --shard i/n (training=null or --model) it evaluates only the batches whose id
(dataset1/b00000, …) hashes to shard i, the batches of the unsharded run, into --out
with a shard manifest; rerunning a finished shard does nothing, and attnscope merge
--out DIR joins the n shard folders into the unsharded results.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEvaluate(cmd, args, evalFlags{out, backend, hfModel, intervene}, dropLast, nFig, sh)
		},
	}
	shard.AddFlag(c.Flags(), &sh)
	c.Flags().StringVar(&out, "out", "", "output folder for results.json, summary.csv, samples.csv")
	c.Flags().StringVar(&hfModel, "model", "", "evaluate this Hugging Face causal LM folder (with its tokenizer and chat template) instead of the config's model")
	c.Flags().StringVar(&intervene, "intervene", "", "YAML file of edits applied during every evaluated forward pass (recorded in results.json)")
	c.Flags().StringVar(&backend, "backend", "", "GoMLX backend (default $GOMLX_BACKEND, else "+train.DefaultBackend+")")
	c.Flags().IntVar(&nFig, "figures", 5, "with evaluation.visualize: samples per dataset drawn into OUT/visualizations")
	c.Flags().BoolVar(&dropLast, "drop-last", false, "skip samples that do not fill a last batch, as the original's DataLoader(drop_last=True)")
	return c
}

// evalFlags are evaluate's string flags.
type evalFlags struct{ out, backend, hfModel, intervene string }

// evalOptions are evaluate's options from its flags: the intervention read from its
// file, the batches of the shard and the work folder keeping those it evaluated.
func evalOptions(cmd *cobra.Command, args []string, be compute.Backend, fl evalFlags, dropLast bool, sh shard.Shard) (train.EvalOptions, error) {
	opts := train.EvalOptions{Backend: be, ModelBackend: fl.backend, DropLast: dropLast}
	if fl.intervene != "" {
		var err error
		if opts.Intervention, err = model.ReadIntervention(fl.intervene); err != nil {
			return opts, err
		}
	}
	if sh.Sharded() {
		opts.Batch = func(ds string, b int) bool { return sh.Has(evaluate.BatchID(ds, b)) }
		key, err := evalKey(args, fl, dropLast)
		if err != nil {
			return opts, err
		}
		w, err := evaluate.OpenShardWork(fl.out, sh, key)
		if err != nil {
			return opts, err
		}
		if w.Resumed() > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "resuming evaluate shard %s in %s: %d batches evaluated before are kept\n", sh, fl.out, w.Resumed())
		}
		opts.Store = w
	}
	return opts, nil
}

// evalKey identifies what a sharded evaluation computes: the SHA-256 of the
// experiment file, its overrides, the model, the intervention file and the options.
func evalKey(args []string, fl evalFlags, dropLast bool) (string, error) {
	h := sha256.New()
	for _, f := range []string{args[0], fl.intervene} {
		if f == "" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	fmt.Fprintf(h, "\x00%q %q %q %v", args[1:], fl.hfModel, fl.backend, dropLast)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// runEvaluate trains (unless the config says not to) and evaluates the experiment args[0].
func runEvaluate(cmd *cobra.Command, args []string, fl evalFlags, dropLast bool, nFig int, sh shard.Shard) error {
	out, hfModel := fl.out, fl.hfModel
	if out == "" {
		return usagef(cmd, "--out is required")
	}
	e, err := loadEvalExperiment(args, hfModel)
	if err != nil {
		return err
	}
	if done, err := evalShardFinished(cmd, e, out, hfModel, sh); done || err != nil {
		return err
	}
	be, err := train.Backend(fl.backend)
	if err != nil {
		return err
	}
	var cfg train.ModelConfig
	var w [][]float32
	if hfModel == "" && e.Training != nil {
		res, err := train.RunTraining(cmd.Context(), e, train.RunOptions{Backend: be, Log: cmd.ErrOrStderr()})
		if err != nil {
			return err
		}
		cfg, w = res.Config, res.Weights
	} else if hfModel == "" {
		if cfg, w, err = train.NewModel(e, train.Tokenizer()); err != nil {
			return err
		}
	}
	opts, err := evalOptions(cmd, args, be, fl, dropLast, sh)
	if err != nil {
		return err
	}
	if opts.OnSample, err = figureHook(e, out, nFig); err != nil {
		return err
	}
	var endProgress func()
	opts.OnSample, endProgress = evalProgress(cmd.ErrOrStderr(), e, opts.OnSample)
	var rep *evaluate.Report
	if hfModel != "" {
		rep, err = train.EvaluateModel(cmd.Context(), e, hfModel, opts)
	} else {
		rep, err = train.Evaluate(cmd.Context(), e, cfg, w, opts)
	}
	endProgress()
	if err != nil {
		return err
	}
	if err := demo.WriteReport(out, rep); err != nil {
		return err
	}
	if err := finishEvalShard(cmd, out, sh, rep, opts.Store); err != nil {
		return err
	}
	demo.PrintReport(cmd.OutOrStdout(), rep)
	fmt.Fprintf(cmd.OutOrStdout(), "results in %s\n", out)
	return nil
}

// finishEvalShard writes the manifest and samples of shard sh (nothing unsharded) and
// removes its work folder, saying how many batches this run evaluated.
func finishEvalShard(cmd *cobra.Command, out string, sh shard.Shard, rep *evaluate.Report, store evaluate.BatchStore) error {
	if !sh.Sharded() {
		return nil
	}
	if err := evaluate.WriteShard(out, sh, rep); err != nil {
		return err
	}
	if err := evaluate.RemoveShardWork(out); err != nil {
		return err
	}
	w := store.(*evaluate.ShardWork)
	fmt.Fprintf(cmd.ErrOrStderr(), "shard %s: %d batches evaluated, %d kept from an earlier run\n", sh, w.Evaluated(), w.Resumed())
	return nil
}

// evalShardFinished refuses --shard for an experiment that trains, and reports
// whether out holds shard sh finished (then there is nothing to do).
func evalShardFinished(cmd *cobra.Command, e *train.Experiment, out, hfModel string, sh shard.Shard) (bool, error) {
	if !sh.Sharded() {
		return false, nil
	}
	if hfModel == "" && e.Training != nil {
		return false, usagef(cmd, "--shard evaluates a trained model: set training=null (or give --model); every shard would train its own")
	}
	done, err := evaluate.ShardFinished(out, sh)
	if done {
		if err := evaluate.RemoveShardWork(out); err != nil { // left by a kill after the manifest
			return true, err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "shard %s already finished in %s (its manifest says so): nothing to evaluate\n", sh, out)
	}
	return done, err
}

// loadEvalExperiment reads the experiment config args[0] with the overrides args[1:];
// with hfModel, for evaluating that Hugging Face model.
func loadEvalExperiment(args []string, hfModel string) (*train.Experiment, error) {
	var e *train.Experiment
	var err error
	if hfModel != "" {
		e, err = train.LoadModelExperiment(args[0], args[1:], hfModel)
	} else {
		e, err = train.LoadExperiment(args[0], args[1:])
	}
	if err == nil && e.Evaluation == nil {
		err = fmt.Errorf("%s: the config has no evaluation section", args[0])
	}
	return e, err
}

// figureHook returns, with evaluation.visualize, the hook drawing the reference-token
// figures of the first nFig samples of each dataset into out/visualizations (the
// original draws every sample of batch-size-1 runs).
func figureHook(e *train.Experiment, out string, nFig int) (func(string, int, *tasks.Sample, []int, [][][]float32) error, error) {
	if !e.Evaluation.Visualize {
		return nil, nil
	}
	figDir := filepath.Join(out, "visualizations")
	if err := os.MkdirAll(figDir, 0o755); err != nil {
		return nil, err
	}
	return func(ds string, i int, s *tasks.Sample, _ []int, attn [][][]float32) error {
		if i >= nFig || s.Labels == nil {
			return nil
		}
		return demo.DrawReference(figDir, fmt.Sprintf("%s_%s_%03d", e.Evaluation.Name, ds, i), s, demo.AttentionTensor(attn, len(s.InputIDs)))
	}, nil
}
