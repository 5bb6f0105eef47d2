package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/diagnose"
	"github.com/attnscope/attnscope/internal/progress"
	"github.com/attnscope/attnscope/internal/shard"
	"github.com/attnscope/attnscope/report"
)

// diagnoseFlags are the flags every diagnose subcommand shares.
type diagnoseFlags struct {
	o         diagnose.Options
	genParams string
	seed      uint64
	tableSeed int64
}

func (f *diagnoseFlags) register(c *cobra.Command, batches, batchSize int, intended string) {
	fl := c.Flags()
	fl.StringVar(&f.o.ModelDir, "model", "", "checkpoint folder (config.json, model.safetensors, tokenizer.json)")
	fl.BoolVar(&f.o.Scratch, "scratch", false, "freshly initialise the model's architecture from --seed instead of loading its weights")
	fl.Uint64Var(&f.seed, "seed", 42, "seed of the initialisation, example order, output positions, dropout and noise")
	fl.StringVar(&f.o.GLUE, "glue", "", "GLUE TSV file (train.tsv or dev.tsv of MNLI, SST-2 or STS-B)")
	fl.StringVar(&f.o.Task, "task", "", "GLUE task of --glue: MNLI, SST-2 or STS-B")
	fl.StringVar(&f.o.Text, "text", "", "text file, one input per line")
	fl.StringVar(&f.o.Generator, "generator", "", "AttentionSpan generator name (attnscope tasks list)")
	fl.StringVar(&f.genParams, "generator-params", "{}", "the generator's parameters as a JSON object")
	fl.IntVar(&f.o.MaxLen, "max-len", 128, "tokens per example (inputs are cut; layernorm pads to it)")
	fl.IntVar(&f.o.Shift, "shift", 0, "map every token id t to (t + shift) mod vocab_size")
	fl.StringVar(&f.o.Table, "table", "", "map token ids through a table (.npy int vector or JSON list, a permutation of the vocabulary)")
	fl.Int64Var(&f.tableSeed, "random-table", -1, "map token ids through a random table drawn from this seed (saved as token_table.npy in the run)")
	fl.IntVar(&f.o.Reserved, "reserved", 1000, "ids kept in place (moved to the end) by --random-table")
	fl.BoolVar(&f.o.Train, "train", false, "training mode: dropout on (evaluation mode, dropout off, without it)")
	fl.IntVar(&f.o.Batches, "batches", batches, "number of batches "+intended)
	fl.IntVar(&f.o.BatchSize, "batch-size", batchSize, "examples per batch")
	fl.StringVar(&f.o.Backend, "backend", "", "GoMLX backend (default: $GOMLX_BACKEND or the pure-Go backend)")
	fl.StringVarP(&f.o.Out, "out", "o", "", "run folder to create")
}

func (f *diagnoseFlags) setup(c *cobra.Command, needHead bool) (*diagnose.Setup, error) {
	f.o.Seed = f.seed
	if f.tableSeed >= 0 {
		f.o.RandomTable, f.o.TableSeed = true, uint64(f.tableSeed)
	}
	if err := json.Unmarshal([]byte(f.genParams), &f.o.GeneratorParams); err != nil {
		return nil, usagef(c, "--generator-params: %v (expected a JSON object)", err)
	}
	f.o.Command = os.Args
	f.o.Log = c.ErrOrStderr()
	return diagnose.Prepare(f.o, needHead)
}

func newDiagnoseCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "diagnose",
		Short: "Gradient diagnostics of BERT-non-text: Jacobian spectra, gradient confusion, perturbation, LayerNorm statistics",
	}
	c.AddCommand(newDiagnoseJacobianCmd(), newDiagnoseConfusionCmd(), newDiagnosePerturbCmd(), newDiagnoseLayerNormCmd(), newDiagnosePlotCmd())
	return c
}

// diagnoseRun wires a diagnostic to the shared flags, a progress bar and the report line.
func diagnoseRun(f *diagnoseFlags, needHead bool, what string, run func(ctx context.Context, s *diagnose.Setup, tick func(done, total int)) (string, error)) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, _ []string) error {
		defer lowerGC()()
		s, err := f.setup(c, needHead)
		if err != nil {
			return err
		}
		var bar *progress.Tracker
		tick := func(done, total int) {
			if bar == nil {
				bar = progress.New(c.ErrOrStderr(), "diagnose "+what, "batches", total)
			}
			bar.Finish(fmt.Sprintf("batch %d", done), 1, "")
		}
		out, err := run(c.Context(), s, tick)
		if bar != nil {
			bar.Close()
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(c.OutOrStdout(), "%s: %s model, %s, %d batches → %s\n", what, map[bool]string{true: "scratch", false: "pretrained"}[f.o.Scratch], s.Mode, f.o.Batches, out)
		return nil
	}
}

func newDiagnoseJacobianCmd() *cobra.Command {
	f := &diagnoseFlags{}
	var chunk int
	c := &cobra.Command{
		Use:   "jacobian",
		Short: "Singular values of every output–input Jacobian block ∂Y[p,:]/∂E[w,:] per example",
		Args:  cobra.NoArgs,
	}
	f.register(c, 200, 1, "(examples; the original ran 2, 200 intended)")
	c.Flags().IntVar(&chunk, "chunk", 32, "output coordinates per reverse pass (memory: chunk copies of one forward pass)")
	shard.AddFlag(c.Flags(), &f.o.Shard)
	c.RunE = diagnoseRun(f, false, "jacobian", func(ctx context.Context, s *diagnose.Setup, tick func(int, int)) (string, error) {
		return diagnose.RunJacobian(ctx, s, chunk, tick)
	})
	return c
}

func newDiagnoseConfusionCmd() *cobra.Command {
	f := &diagnoseFlags{}
	var acc int
	c := &cobra.Command{
		Use:   "confusion",
		Short: "Pairwise cosine, dot and l2 between the loss gradients of all parameters of mini-batches",
		Args:  cobra.NoArgs,
	}
	f.register(c, 100, 32, "(gradient steps; the original stopped after 2, 100 intended)")
	c.Flags().IntVarP(&acc, "accumulation", "a", 1, "mini-batches of batch-size/accumulation averaged into one gradient")
	c.Flags().BoolVar(&f.o.InitHead, "init-head", false, "draw a classification head absent from the checkpoint from --seed (as transformers does)")
	shard.AddFlag(c.Flags(), &f.o.Shard)
	c.RunE = diagnoseRun(f, true, "confusion", func(ctx context.Context, s *diagnose.Setup, tick func(int, int)) (string, error) {
		return diagnose.RunConfusion(ctx, s, acc, tick)
	})
	return c
}

func newDiagnosePerturbCmd() *cobra.Command {
	f := &diagnoseFlags{}
	var std float64
	c := &cobra.Command{
		Use:   "perturb",
		Short: "Distance between the last [CLS] vector with clean and noisy (N(0, std²)) weights",
		Args:  cobra.NoArgs,
	}
	f.register(c, 200, 32, "(the original ran 3, 200 intended)")
	c.Flags().Float64Var(&std, "std", 1e-2, "standard deviation of the parameter noise")
	shard.AddFlag(c.Flags(), &f.o.Shard)
	c.RunE = diagnoseRun(f, false, "perturb", func(ctx context.Context, s *diagnose.Setup, tick func(int, int)) (string, error) {
		return diagnose.RunPerturb(ctx, s, std, tick)
	})
	return c
}

func newDiagnoseLayerNormCmd() *cobra.Command {
	f := &diagnoseFlags{}
	c := &cobra.Command{
		Use:   "layernorm",
		Short: "Per-token std of the residual sums entering each BERT LayerNorm (hooks blocks.<l>.hook_attn_preln, hook_mlp_preln)",
		Args:  cobra.NoArgs,
	}
	f.register(c, 200, 32, "(the original ran 3, 200 intended)")
	shard.AddFlag(c.Flags(), &f.o.Shard)
	c.RunE = diagnoseRun(f, false, "layernorm", func(ctx context.Context, s *diagnose.Setup, tick func(int, int)) (string, error) {
		return diagnose.RunLayerNorm(ctx, s, tick)
	})
	return c
}

func newDiagnosePlotCmd() *cobra.Command {
	var labels []string
	var out string
	c := &cobra.Command{
		Use:   "plot RUN [RUN...]",
		Short: "Draw diagnose runs of one diagnostic side by side (e.g. pretrained vs scratch)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if out == "" {
				return usagef(c, "--out is required (a .png, .svg or .pdf file)")
			}
			fig, err := report.DiagnoseFigure(args, labels)
			if err != nil {
				return err
			}
			return fig.Save(out)
		},
	}
	c.Flags().StringSliceVar(&labels, "label", nil, "label of each run, in order (default: pretrained/scratch and the folder name)")
	c.Flags().StringVarP(&out, "out", "o", "", "figure file (.png, .svg or .pdf)")
	return c
}
