package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/train"
)

func newTrainCmd() *cobra.Command {
	var (
		maxTime time.Duration
		backend string
		out     string
		force   bool
	)
	c := &cobra.Command{
		Use:   "train CONFIG.yaml [key=value ...]",
		Short: "Train a small GPT-2 on an AttentionSpan task and save it as a Hugging Face checkpoint",
		Long: `Trains the model of an AttentionSpan-style experiment config (strict YAML: model,
training, evaluation) from scratch on GoMLX: AdamW with decoupled weight decay,
gradient-norm clipping, linear warm-up and cosine decay. Every training.log_every steps
it logs train_loss and grad_norm (val/acc every training.val_every steps); a progress
bar replaces the lines on a terminal. With training.save_checkpoint the folder
training.checkpoint_filepath receives model.safetensors + config.json (GPT-2 layout),
tokenizer.json, train_log.jsonl and training.json.

The output folder is --out, else training.checkpoint_filepath; a shipped config (one
inside the repository) does not write into the repository's folders (such as
models/default, the bundled model) unless --out names them, and an existing checkpoint
is replaced only with --force.

Overrides follow Hydra: training.batch_size=32 replaces a key, +training.max=1 adds one,
training=null disables training (an error here: there would be nothing to do).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := train.LoadExperiment(args[0], args[1:])
			if err != nil {
				return err
			}
			if e.Training == nil {
				return usagef(cmd, "%s: training is null: nothing to train (use attnscope evaluate)", args[0])
			}
			if err := trainOutput(args[0], out, force, e.Training); err != nil {
				return err
			}
			be, err := train.Backend(backend)
			if err != nil {
				return err
			}
			_, err = train.RunTraining(cmd.Context(), e, train.RunOptions{Backend: be, Log: trainLog(cmd.ErrOrStderr()), MaxTime: maxTime})
			return err
		},
	}
	c.Flags().DurationVar(&maxTime, "max-time", 0, "stop training after this long (the model is still saved)")
	c.Flags().StringVarP(&out, "out", "o", "", "output folder of the checkpoint (replaces training.checkpoint_filepath)")
	c.Flags().BoolVar(&force, "force", false, "replace a checkpoint that exists in the output folder")
	c.Flags().StringVar(&backend, "backend", "", "GoMLX backend (default $GOMLX_BACKEND, else "+train.DefaultBackend+")")
	return c
}
