package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/store"
)

func newImportCmd() *cobra.Command {
	var (
		out, tokensFrom string
		fp16            bool
	)
	cmd := &cobra.Command{
		Use:   "import --out RUN [--tokens-from FILE] FILE|DIR...",
		Short: "Bring attention computed by other tools (.npy, .npz, .safetensors, followup-attention folders) into a run folder",
		Long: `import copies attention tensors into the run folder RUN so that derive, plot and
report can use them. Accepted inputs:
  - .npy files of shape [layers, heads, N, N] or [layers, N, N] (one head);
  - .npz archives: every array is one sample (named FILE.ARRAY when there are several);
  - .safetensors files: attnscope's own attention.safetensors, or every tensor whose
    name contains "attention" (every floating-point tensor when none does), such as
    transformers' reference files (caseI.attentions, caseI.generation_attentions);
  - a followup-attention output folder (att_tensor/<stem>.npy + metadata/<stem>.json):
    tokens_all, tokens_prompt, text_prompt and text_generated give the tokens, the
    prompt length and the character offsets;
  - a folder of such files.
--tokens-from gives token information as JSON: {"cases": [{text, ids, tokens, offsets}]}
(a model folder's reference.json; case I goes to the tensor caseI.*) or
{"<sample id>": {text, ids, tokens, offsets, prompt_length}}.
Every layer is checked (rank, square, finite, non-negative weights) as it is copied;
samples already in RUN are skipped.`,
		Example: `  attnscope import --out runs/followup output_data/
  attnscope import --out runs/ref --tokens-from models/code-gpt2-mini/reference.json models/code-gpt2-mini/reference.safetensors
  attnscope import --out runs/mine attention.npy other.npz`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usagef(cmd, "--out is required")
			}
			w := cmd.ErrOrStderr()
			sum, err := store.Import(cmd.Context(), out, args, store.ImportOptions{
				TokensFrom: tokensFrom, FP16: fp16, Command: commandLine(cmd, args),
				Progress: func(id string, skipped bool) {
					if skipped {
						fmt.Fprintf(w, "import: %s already present, skipped\n", id)
					} else {
						fmt.Fprintf(w, "import: %s\n", id)
					}
				},
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %d samples into %s (%d already present, skipped)\n", sum.Imported, out, sum.Skipped)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "out", "o", "", "run folder to write (added to when it holds an import run)")
	f.StringVar(&tokensFrom, "tokens-from", "", "JSON file with the samples' text, ids, tokens and offsets")
	f.BoolVar(&fp16, "fp16", false, "store the attention as float16")
	return cmd
}
