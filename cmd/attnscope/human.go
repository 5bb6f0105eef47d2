package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/human"
)

func newHumanCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "human --config eye.yaml STEP",
		Short: "Turn eye-tracking sessions (Gazepoint fixations, editor snapshots) into a human run",
		Long: `human runs a step of the eye-tracking pipeline of followup-attention on the
sessions listed in an eye.yaml config, writing the run folder folder_output (run.json
of kind "human", one sample per session, derived/<pass>/<id>.npy, human/...).
Steps: ` + strings.Join(human.Steps, ", ") + `, or all.
A participant without manual_screen_coordinates has its code area found in a frame of
its screen recording (screen_frame, or <participant>/<task>_frame.png) with the zoom
level's marker images. derive, report and plot read the run like a machine run.
'attnscope human generate' writes a synthetic study with its ground truth.`,
		Example: `  attnscope human generate --questions ../shared/datasets/followup-attention/human_attention_tasks --out study
  attnscope human --config study/eye.yaml all
  attnscope report study/run`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if configPath == "" {
				return usagef(cmd, "--config is required")
			}
			cfg, err := human.LoadConfig(configPath)
			if err != nil {
				return err
			}
			return human.RunStep(cmd.Context(), cfg, args[0], human.Options{Command: os.Args, Log: cmd.ErrOrStderr()})
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "eye-tracking config (eye.yaml)")
	cmd.AddCommand(newHumanGenerateCmd())
	return cmd
}

func newHumanGenerateCmd() *cobra.Command {
	var (
		o     human.GenerateOptions
		out   string
		glob  string
		seed  uint64
		files []string
	)
	cmd := &cobra.Command{
		Use:   "generate --questions DIR --out DIR",
		Short: "Write a synthetic eye-tracking study (fixations, snapshots, eye.yaml, ground truth)",
		Long: `generate writes synthetic Gazepoint fixation exports and editor snapshots of
developers reading the task files under --questions (files matching --files, relative
to it), the config OUT/eye.yaml that processes them into OUT/run, and the ground-truth
character weights OUT/truth/<id>.npy that 'attnscope human --config OUT/eye.yaml
getweights' must recover exactly (see package human, Generate, for the reading model).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Questions == "" || out == "" {
				return usagef(cmd, "--questions and --out are required")
			}
			m, err := filepath.Glob(filepath.Join(o.Questions, glob))
			if err != nil {
				return usagef(cmd, "--files: %v", err)
			}
			for _, f := range m {
				if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() && !strings.HasSuffix(f, ".yaml") {
					rel, _ := filepath.Rel(o.Questions, f)
					files = append(files, filepath.ToSlash(rel))
				}
			}
			if len(files) == 0 {
				return fmt.Errorf("no task files match %s under %s", glob, o.Questions)
			}
			sort.Strings(files)
			o.Files, o.Seed = files, seed
			if o.TasksPerParticipant == 0 {
				o.TasksPerParticipant = (len(files) + o.Participants - 1) / o.Participants
			}
			truth, err := human.Generate(out, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d sessions of %d developers over %d files: %s\n", len(truth), o.Participants, len(files), filepath.Join(out, "eye.yaml"))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Questions, "questions", "", "folder of the task files (folder_questions)")
	f.StringVar(&glob, "files", "sensemaking/*", "task files under --questions (glob)")
	f.StringVar(&out, "out", "", "folder to write the study into")
	f.IntVar(&o.Participants, "participants", 8, "number of synthetic developers")
	f.IntVar(&o.TasksPerParticipant, "tasks", 0, "tasks per developer (default: every file read once)")
	f.Uint64Var(&seed, "seed", 1, "random seed")
	f.StringVar(&o.ModelTokenizer, "tokenizer", "", "model folder whose tokenizer.json the follow-up matrices use")
	return cmd
}
