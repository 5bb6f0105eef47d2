package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/grading"
	"github.com/attnscope/attnscope/store"
)

func newGradeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "grade",
		Short: "Answers of generations, graded CSVs of the study, automatic checks of generated code",
	}
	cmd.AddCommand(newGradeAnswersCmd(), newGradeImportCmd(), newGradeCheckCmd())
	return cmd
}

func newGradeAnswersCmd() *cobra.Command {
	var o grading.AnswerOptions
	cmd := &cobra.Command{
		Use:   "answers RUN",
		Short: "Write RUN/answers/<id>.txt and RUN/machine_answers.csv (text from \"Question\" on)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			run, err := store.Open(args[0])
			if err != nil {
				return err
			}
			as, err := grading.MachineAnswers(run, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d answers: %s\n", len(as), filepath.Join(args[0], "machine_answers.csv"))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ModelName, "model-name", "", "model_name column (default: the run's model folder name)")
	f.BoolVar(&o.UnknownModelName, "original-model-name", false, "write model_name \"unknown\" as the original did")
	f.BoolVar(&o.TryFromName, "original-try", false, "read n_try from the third '_'-separated field of the sample id, as the original did")
	return cmd
}

func newGradeImportCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "import --out grades.csv FILE|DIR...",
		Short: "Gather graded CSVs (scores 0–2) and annotation sheets (grades 1–5) into one table",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usagef(cmd, "--out is required")
			}
			gs, err := grading.ImportGrades(args)
			if err != nil {
				return err
			}
			if err := grading.WriteGrades(out, gs); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d grades: %s\n", len(gs), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "CSV table to write")
	return cmd
}

func newGradeCheckCmd() *cobra.Command {
	var tests, out string
	cmd := &cobra.Command{
		Use:   "check RUN [--tests tests.yaml] [--out checks.csv]",
		Short: "Syntax validity (tree-sitter), generated tokens and task tests of every sample",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			run, err := store.Open(args[0])
			if err != nil {
				return err
			}
			var spec *grading.TestSpec
			if tests != "" {
				if spec, err = grading.LoadTestSpec(tests); err != nil {
					return err
				}
			}
			rs, err := grading.Check(cmd.Context(), run, spec)
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join(args[0], "checks.csv")
			}
			if err := grading.WriteChecks(out, rs); err != nil {
				return err
			}
			valid, pass := 0, 0
			for _, r := range rs {
				if r.SyntaxValid {
					valid++
				}
				if r.Tests == "pass" {
					pass++
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d samples: %d syntactically valid, %d passed their tests: %s\n", len(rs), valid, pass, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&tests, "tests", "", "YAML listing the tasks that ship tests")
	cmd.Flags().StringVar(&out, "out", "", "CSV to write (default RUN/checks.csv)")
	return cmd
}
