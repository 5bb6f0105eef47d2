package main

import (
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/demo"
)

func newDemoCmd() *cobra.Command {
	var (
		out, config string
		retrain     bool
		figures     int
	)
	c := &cobra.Command{
		Use:   "demo [key=value ...]",
		Short: "Evaluate the bundled default model in and out of distribution and write a report folder",
		Long: `The main job on a fresh machine, with nothing to download. It takes the bundled default
model (a small GPT-2 trained by attnscope itself on long addition, models/default) or, with
--retrain, trains it again from --config; evaluates it on in-distribution (1-4 digit)
and out-of-distribution (5-10 digit) sums: exact-match and piecewise accuracy, error
positions, the share of rollout attention on the reference digits and its Welch tests;
captures the attention of a few samples with the model runtime into a run folder; draws
AttentionSpan's reference-token figures; runs the analyses of configs/demo-derive.yaml
(embedded: rollout, entropy, max weight, sparsity, attention received, crispiness,
Jensen-Shannon distances, head diversity and collapse) over the run through derive;
writes an HTML report of the run; and prints where everything is. Contents of --out:
  model/           the model folder used (Hugging Face GPT-2 checkpoint)
  results.json, summary.csv, samples.csv   evaluation (spec §2.5)
  heads.csv        per layer and head: mean share of raw attention on the reference digits
  run/             captured attention (store layout), derived/ outputs, metrics.csv and
                   metrics.parquet (the analyses and the reference shares), report.html
  figures/         reference-token figures of the captured samples
  README.txt       the summary printed at the end
  index.html       the summary, the figures and links to everything above
With --retrain, key=value arguments override the config (e.g. training.steps=500).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if figures < 0 {
				return usagef(cmd, "--figures must be ≥ 0")
			}
			if len(args) > 0 && !retrain {
				return usagef(cmd, "config overrides (%s) need --retrain", strings.Join(args, " "))
			}
			return demo.Run(cmd.Context(), demo.Options{Out: out, Config: config, Retrain: retrain, Figures: figures, Overrides: args, Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()})
		},
	}
	c.Flags().StringVar(&out, "out", "attnscope-demo", "report folder (created; an existing one must be empty or made by an earlier demo)")
	c.Flags().BoolVar(&retrain, "retrain", false, "train the default model again instead of using the bundled one")
	c.Flags().StringVar(&config, "config", filepath.Join("configs", "attentionspan", "default-addition.yaml"), "experiment config for --retrain")
	c.Flags().IntVar(&figures, "figures", 3, "samples per dataset to capture and draw")
	c.AddCommand(newDemoSeq2seqCmd())
	return c
}
