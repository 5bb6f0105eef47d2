package main

import (
	"fmt"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/derive"
	"github.com/attnscope/attnscope/experiment"
	"github.com/attnscope/attnscope/internal/progress"
)

// runFlags are the settings of attnscope run.
type runFlags struct {
	config, layout, runs, backend, truncate string
	sets, only                              []string
	workers                                 int
}

func newRunCmd() *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run --config exp.yaml [queryextract|deriveall|getanswers|all]",
		Short: "Run a followup-attention experiment file (exp_vXX.yaml) as it is",
		Long: `run takes followup-attention's experiment files as they are. queryextract continues
each prompt file of input_data_folder (cut after the stop_signal_line) with each model
of models n_queries times (sampling at temperature, seed = try, number_of_tokens new
tokens, -1: until end of text or a full context) and stores one run folder per model
in --runs (default <output_data_folder>/runs/<model with / → _>). deriveall runs
analysis_passes in order through derive (input_folder att_tensor: the attention,
reduced and normalised as the attention key says; metadata: the sample's record;
otherwise an earlier pass). getanswers writes answers/<stem>.txt. all does the three.
With --layout followup the original's files are written too: metadata/<stem>.json,
att_tensor/<stem>.npy, generated_sequence/<stem>.txt and <analysis_data_folder>/<pass>/<stem>.npy,
stem = <prompt file>_<try>_<model with / → _>. {{name}} placeholders of the file
take their values from --set name=value. Every step resumes where it stopped.`,
		Example: `  attnscope run --config configs/followup/exp_v10.yaml --set model_huggingface_name=code-gpt2-mini \
      --set model_short_name=gpt2mini --truncate left --layout followup all
  attnscope run --config exp.yaml --set model_short_name=x --only 'Nqueens_Q1.*' queryextract`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return f.run(cmd, args) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", "", "experiment file (followup-attention's exp_vXX.yaml)")
	fl.StringArrayVar(&f.sets, "set", nil, "NAME=VALUE for the file's {{NAME}} placeholders (repeatable)")
	fl.StringArrayVar(&f.only, "only", nil, "run only the prompt files whose names match this pattern (e.g. 'Nqueens_*'; repeatable)")
	fl.StringVar(&f.layout, "layout", experiment.LayoutRun, "run: run folders only; followup: also the original's output folders")
	fl.StringVar(&f.runs, "runs", "", "folder of the run folders, one per model (default <output_data_folder>/runs)")
	fl.StringVar(&f.backend, "backend", "", "GoMLX backend (default: $GOMLX_BACKEND, else the pure-Go backend)")
	fl.StringVar(&f.truncate, "truncate", "", "cut prompts longer than the model's context to fit: left drops their start, right their end (default: refuse them)")
	fl.IntVarP(&f.workers, "workers", "j", runtime.GOMAXPROCS(0), "samples derived in parallel")
	return cmd
}

func (f *runFlags) run(cmd *cobra.Command, args []string) error {
	step := experiment.StepAll
	if len(args) == 1 {
		step = args[0]
	}
	switch {
	case f.config == "":
		return usagef(cmd, "--config is required")
	case step != experiment.StepQueryExtract && step != experiment.StepDeriveAll && step != experiment.StepGetAnswers && step != experiment.StepAll:
		return usagef(cmd, "unknown step %q: want queryextract, deriveall, getanswers or all", step)
	case f.layout != experiment.LayoutRun && f.layout != experiment.LayoutFollowup:
		return usagef(cmd, "--layout must be run or followup, got %q", f.layout)
	case f.truncate != "" && f.truncate != "left" && f.truncate != "right":
		return usagef(cmd, "--truncate must be left or right, got %q", f.truncate)
	case f.workers < 1:
		return usagef(cmd, "--workers must be at least 1, got %d", f.workers)
	}
	vars, err := experiment.ParseSets(f.sets)
	if err != nil {
		return usagef(cmd, "%v", err)
	}
	cfg, err := experiment.Load(f.config, vars)
	if err != nil {
		return err
	}
	defer lowerGC()()
	w := cmd.ErrOrStderr()
	opts := experiment.Options{
		RunsDir: f.runs, Layout: f.layout, Backend: f.backend, Truncate: f.truncate, Workers: f.workers, Only: f.only,
		Command: commandLine(cmd, args),
		CaptureProgress: func(total int) (func(int, int, string, bool, time.Duration), func()) {
			return captureProgress(w, total)
		},
		DeriveProgress: func(total int) (func(derive.PassEvent), func()) {
			tr := progress.New(w, "derive", "pass outputs", total)
			return passProgress(tr), tr.Close
		},
		Log: func(msg string) { fmt.Fprintln(cmd.OutOrStdout(), msg) },
	}
	return experiment.Run(cmd.Context(), cfg, step, opts)
}
