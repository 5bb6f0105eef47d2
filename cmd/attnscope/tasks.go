package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/experiment"
	"github.com/attnscope/attnscope/tasks"
	"github.com/attnscope/attnscope/tasks/followup"
	"github.com/attnscope/attnscope/tokenizer"
	"github.com/attnscope/attnscope/train"
)

func newTasksCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "tasks",
		Short: "Task generators: AttentionSpan's with reference-token labels (list, sample), followup-attention's prompt creators (create)",
	}
	c.AddCommand(newTasksListCmd(), newTasksSampleCmd(), newTasksCreateCmd())
	return c
}

func newTasksListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the generators and their parameters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			for _, n := range tasks.GeneratorNames {
				ps, _ := tasks.Params(n)
				fmt.Fprintf(w, "%s\n  parameters: %s\n", n, strings.Join(ps, ", "))
			}
			return nil
		},
	}
}

// parseKV parses key=value arguments with YAML values.
func parseKV(args []string) (map[string]any, error) {
	out := map[string]any{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("argument %q: expected key=value", a)
		}
		val, err := train.YAMLValue(v)
		if err != nil {
			return nil, fmt.Errorf("argument %s: value %q is not valid YAML: %w", k, v, err)
		}
		out[k] = val
	}
	return out, nil
}

func newTasksSampleCmd() *cobra.Command {
	var (
		n        int
		asJSON   bool
		tokPath  string
		bos, eos int
	)
	c := &cobra.Command{
		Use:   "sample GENERATOR [key=value ...]",
		Short: "Print samples of a generator with their reference-token labels",
		Long: `Prints the first samples of a generator (class name such as LongAdditionGenerator, or
an alias such as long_addition) tokenized with the character tokenizer: the text, the
instruction/prompt/generation-prompt lengths, the scored target positions and the
reference cells (row, column) of the label matrix; --tokenizer uses any tokenizer.json
instead (the text is still encoded character by character, as the original). Parameters
are the original's generator_parameters, e.g. seed=0 'length=[1,3]' num_of_nums=2,2.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			params, err := parseKV(args[1:])
			if err != nil {
				return usagef(cmd, "%v", err)
			}
			if n < 1 {
				return usagef(cmd, "-n must be at least 1")
			}
			var tok tasks.Tokenizer = train.Tokenizer()
			if tokPath != "" {
				hf, err := tokenizer.Load(tokPath)
				if err != nil {
					return err
				}
				if tok, err = tasks.NewHFTokenizer(hf, bos, eos); err != nil {
					return err
				}
			}
			g, err := tasks.New(args[0], params, tok)
			if err != nil {
				return err
			}
			return printSamples(cmd.OutOrStdout(), g, n, asJSON)
		},
	}
	c.Flags().IntVarP(&n, "n", "n", 3, "number of samples")
	c.Flags().StringVar(&tokPath, "tokenizer", "", "a tokenizer.json to tokenize with (default: the character tokenizer)")
	c.Flags().IntVar(&bos, "bos", -1, "with --tokenizer: BOS id (default: tokenizer_config.json's bos_token)")
	c.Flags().IntVar(&eos, "eos", -1, "with --tokenizer: EOS id (default: tokenizer_config.json's eos_token)")
	c.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line (text, input_ids, target_ids, labels as a matrix)")
	return c
}

func printSamples(w io.Writer, g tasks.Generator, n int, asJSON bool) error {
	for i := 0; i < n; i++ {
		s, err := g.Next()
		if err != nil {
			return err
		}
		if asJSON {
			rec := map[string]any{"text": s.Text, "input_ids": s.InputIDs, "target_ids": s.TargetIDs,
				"instruction_length": s.InstructionLen, "prompt_length": s.PromptLen, "generation_prompt_length": s.GenPromptLen}
			if s.Labels != nil {
				m := make([][]int32, s.Labels.N)
				for r := range m {
					m[r] = s.Labels.Cells[r*s.Labels.N : (r+1)*s.Labels.N]
				}
				rec["attn_labels"] = m
			}
			b, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%s\n", b)
			continue
		}
		fmt.Fprintf(w, "%q\n  tokens %d, I=%d P=%d G=%d, scored positions %v\n", s.Text, len(s.InputIDs), s.InstructionLen, s.PromptLen, s.GenPromptLen, s.ScoredPositions(tasks.DefaultIgnoreIndex))
		if s.Labels != nil {
			fmt.Fprintf(w, "  reference cells (row, column): %v\n", s.Labels.Ones())
		} else {
			fmt.Fprintf(w, "  no attention labels\n")
		}
	}
	return nil
}

func newTasksCreateCmd() *cobra.Command {
	var (
		config string
		sets   []string
		force  bool
	)
	c := &cobra.Command{
		Use:   "create --config EXP.yaml [--set NAME=VALUE]...",
		Short: "Create followup-attention's synthetic prompts with their ground-truth line weights",
		Long: `Reads a followup-attention experiment file (exp_vXX.yaml, parsed as attnscope run
parses it, {{NAME}} placeholders filled by --set; the run's keys may be absent) and creates the prompts of prompt_creation_strategy as the
original's creators do (name: assignment_chain, two_functions_one_test or
complete_gibberish; kwargs as in the original, seed required): the prompts go to
input_data_folder/<name>.txt (the folder capture --prompts and attnscope run read), the
ground truth to ground_truth_folder/<name>.json (attendable_parts, attention_level,
attention_weights, args, creation_strategy) and, for every prompt, one row per line to
ground_truth_folder/ground_truth.csv (prompt, line from 0, text, weight). assignment_chain
also takes original_n_args (default true: each operation has min_n_args operands, the
original's quirk; false: between min_n_args and max_n_args) and max_level_of_depth
(default 10). Score a capture of the prompts against the ground truth with the derive
pass ground_truth_lines.`,
		Example: `  attnscope tasks create --config configs/followup/creators-assignment-chain.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if config == "" {
				return usagef(cmd, "--config is required")
			}
			vars, err := experiment.ParseSets(sets)
			if err != nil {
				return usagef(cmd, "%v", err)
			}
			cfg, err := experiment.LoadCreation(config, vars)
			if err != nil {
				return err
			}
			prompts, err := followup.Create(cfg.PromptCreationStrategy)
			if err != nil {
				return err
			}
			if err := followup.Write(cfg.InputDataFolder, cfg.GroundTruthFolder, prompts, force); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %d prompts in %s, ground truth in %s\n", len(prompts), cfg.InputDataFolder, cfg.GroundTruthFolder)
			return nil
		},
	}
	c.Flags().StringVar(&config, "config", "", "followup-attention experiment file with prompt_creation_strategy")
	c.Flags().StringArrayVar(&sets, "set", nil, "NAME=VALUE for the file's {{NAME}} placeholders (repeatable)")
	c.Flags().BoolVar(&force, "force", false, "overwrite a prompts folder that already holds .txt files")
	return c
}
