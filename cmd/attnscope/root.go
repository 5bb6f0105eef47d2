package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/internal/shard"
)

// usageError marks a command-line mistake (unknown flag, wrong number of arguments);
// it makes the binary exit with status 2 instead of 1.
type usageError struct {
	cmd string
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usage error for cmd.
func usagef(cmd *cobra.Command, format string, a ...any) error {
	return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf(format, a...)}
}

// newRootCmd builds the command tree. Each subcommand lives in its own file as newXxxCmd.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "attnscope",
		Short: "See inside transformer models through their attention",
		Long: `attnscope runs transformer models (GPT-2, BERT, Llama/Mistral/Qwen2, GPT-NeoX),
captures every attention matrix and hidden state, keeps them on disk with their
provenance, derives analyses and shows them as figures and reports.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if se := (*shard.FlagError)(nil); errors.As(err, &se) {
			err = se // its sentence names --shard and the value already
		}
		return &usageError{cmd: c.CommandPath(), err: err}
	})
	root.AddCommand(
		newVersionCmd(),
		newTokenizeCmd(),
		newBenchCmd(),
		newPlotCmd(),
		newReportCmd(),
		newCaptureCmd(),
		newImportCmd(),
		newTasksCmd(),
		newTrainCmd(),
		newEvaluateCmd(),
		newInterveneCmd(),
		newDemoCmd(),
		newDeriveCmd(),
		newCompareCmd(),
		newHumanCmd(),
		newGradeCmd(),
		newServeCmd(),
		newSeq2seqCmd(),
		newSimilarityCmd(),
		newMatchHeadsCmd(),
		newDiagnoseCmd(),
		newMergeCmd(),
		newJobsCmd(),
		newRunCmd(),
	)
	addVersionFlag(root)
	hideDuplicateDefaults(root)
	// Wrap argument validators so that a wrong number of arguments is a usage error.
	wrapArgs(root)
	return root
}

// wrapArgs makes every command's positional-argument check return a usageError.
func wrapArgs(c *cobra.Command) {
	if c.Args != nil {
		orig := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := orig(cmd, args); err != nil {
				return &usageError{cmd: cmd.CommandPath(), err: err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}
