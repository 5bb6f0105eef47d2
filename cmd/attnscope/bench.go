package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/attnscope/attnscope/bench/capturebench"
	"github.com/attnscope/attnscope/bench/intervenebench"
	"github.com/attnscope/attnscope/model"
	"github.com/spf13/cobra"
)

func newBenchCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks against baselines (see its subcommands)",
	}
	c.AddCommand(newBenchCaptureCmd(), newBenchInterveneCmd())
	return c
}

func newBenchInterveneCmd() *cobra.Command {
	o := intervenebench.Options{}
	c := &cobra.Command{
		Use:   "intervene --model DIR",
		Short: "Time a capture with an intervention hook against one without, and a head-ablation sweep per head",
		Long: `Times (1) a full capture (attention, hidden states, Q/K/V; no LM head) of one random prompt
without an intervention, with one head's hook_z zeroed in layer 0, and with every head's
pattern scaled in every layer, interleaved, median wall and CPU time with their ratios to the
clean capture; (2) the head-ablation sweep of intervene sweep (each head's output zeroed
alone, cross-entropy on the next tokens of --prompts random prompts) with the time per head.
--heads K times K heads spread over the layers and extrapolates the full sweep, labelled so.
A --model folder without config.json gets a GPT-2-small-shaped checkpoint (12 × 12, width
768) with random weights first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Model == "" || o.Repeats < 1 || o.Prompts < 1 || o.Tokens < 1 || o.CaptureTokens < 1 {
				return usagef(cmd, "--model is required; --repeats, --prompts, --tokens and --capture-tokens must be at least 1")
			}
			if _, err := os.Stat(filepath.Join(o.Model, "config.json")); os.IsNotExist(err) {
				fmt.Fprintf(cmd.ErrOrStderr(), "writing a GPT-2-small-shaped checkpoint with random weights into %s\n", o.Model)
				if err := intervenebench.MakeGPT2Small(o.Model, o.Seed); err != nil {
					return err
				}
			}
			defer lowerGC()()
			return intervenebench.Run(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	c.Flags().StringVar(&o.Model, "model", "", "model folder (written as GPT-2 small with random weights when it has no config.json)")
	c.Flags().StringVar(&o.Backend, "backend", model.DefaultBackend, "GoMLX backend config")
	c.Flags().IntVar(&o.CaptureTokens, "capture-tokens", 128, "prompt length of the capture-overhead passes")
	c.Flags().IntVar(&o.Repeats, "repeats", 5, "timed capture passes per variant (interleaved; median reported)")
	c.Flags().IntVar(&o.Prompts, "prompts", 100, "random prompts of the ablation sweep")
	c.Flags().IntVar(&o.Tokens, "tokens", 32, "tokens per sweep prompt")
	c.Flags().IntVar(&o.Heads, "heads", 0, "heads the sweep times (spread over the layers; 0: all, else the full sweep is extrapolated)")
	c.Flags().Uint64Var(&o.Seed, "seed", 1, "seed of the random prompts (and weights)")
	return c
}

func newBenchCaptureCmd() *cobra.Command {
	o := capturebench.Options{}
	c := &cobra.Command{
		Use:   "capture --model DIR",
		Short: "Time a full-capture forward pass (every attention and hidden state) beside PyTorch eager and the matmul ceiling",
		Long: `Times model.Forward with a recorder that copies every attention matrix and hidden state
(full capture, no LM head) at each sequence length and thread count, and prints the median
milliseconds, achieved GFLOP/s (2·params·N + 4·N²·width per layer) beside the machine's
matmul ceiling (a large square float32 matmul through the same GoMLX backend and thread
count, measured in the same run), and peak RSS (since loading the model for that thread
count, weights included). When python3 with torch is installed and the baseline script
exists, the PyTorch eager baseline (../shared/bench/torch_gpt2.py, the same work) runs on the
same checkpoint in the same command with the same threads (OPENBLAS_NUM_THREADS too) and
without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE, so OpenBLAS uses the machine's native kernel.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Model == "" {
				return usagef(cmd, "--model is required")
			}
			if o.Repeats < 1 {
				return usagef(cmd, "--repeats must be at least 1")
			}
			defer lowerGC()() // as capture does
			_, err := capturebench.Run(cmd.Context(), cmd.OutOrStdout(), o)
			return err
		},
	}
	c.Flags().StringVar(&o.Model, "model", "", "model folder (e.g. one written by torch_gpt2.py make:DIR)")
	c.Flags().StringVar(&o.Backend, "backend", model.DefaultBackend, `GoMLX backend config (e.g. "go" for op-parallel mode, "go:parallelism=4")`)
	c.Flags().IntSliceVar(&o.Sizes, "n", []int{128, 512}, "sequence lengths")
	c.Flags().IntSliceVar(&o.Threads, "threads", []int{1, 2}, "thread counts (GOMAXPROCS; torch.set_num_threads)")
	c.Flags().IntSliceVar(&o.Batches, "batch", []int{8}, "also time these batch sizes (sequences per padded batch, model.ForwardBatch) at the --batch-n lengths; 1 alone: none")
	c.Flags().IntSliceVar(&o.BatchSizes, "batch-n", []int{128}, "sequence lengths of the batched cells")
	c.Flags().IntVar(&o.Repeats, "repeats", 3, "timed repetitions per setting (median reported)")
	c.Flags().IntVar(&o.CeilingSize, "ceiling-size", 2048, "side of the square float32 matmul that measures the ceiling")
	c.Flags().StringVar(&o.Torch.Python, "python", "/usr/bin/python3", "python interpreter for the PyTorch baseline")
	c.Flags().StringVar(&o.Torch.Script, "torch-script", filepath.Join("..", "shared", "bench", "torch_gpt2.py"), "PyTorch baseline script")
	return c
}
