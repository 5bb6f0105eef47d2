package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/bench/capturebench"
	"github.com/attnscope/attnscope/bench/intervenebench"
	"github.com/attnscope/attnscope/bench/qklength"
	"github.com/attnscope/attnscope/model"
	"github.com/spf13/cobra"
)

func newBenchCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks against baselines (see its subcommands)",
	}
	c.AddCommand(newBenchCaptureCmd(), newBenchInterveneCmd(), newBenchQKLengthCmd())
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
without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE, so OpenBLAS uses the machine's native kernel.
Each cell is timed after --warmup untimed passes: after a model is loaded, the first few
passes write into memory the process has not touched yet and run 40–50% slower (GPT-2
small, N = 128); a capture of many samples runs at the speed of the passes after them. The
PyTorch script runs one untimed pass of its own; its later passes show no such trend.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Model == "" {
				return usagef(cmd, "--model is required")
			}
			if o.Repeats < 1 {
				return usagef(cmd, "--repeats must be at least 1")
			}
			if o.Warmup < 1 {
				return usagef(cmd, "--warmup must be at least 1 (the first pass compiles the graphs)")
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
	c.Flags().IntVar(&o.Warmup, "warmup", 5, "untimed passes before them (the first compiles the graphs; the next few fault in fresh memory)")
	c.Flags().IntVar(&o.CeilingSize, "ceiling-size", 2048, "side of the square float32 matmul that measures the ceiling")
	c.Flags().StringVar(&o.Torch.Python, "python", "/usr/bin/python3", "python interpreter for the PyTorch baseline")
	c.Flags().StringVar(&o.Torch.Script, "torch-script", filepath.Join("..", "shared", "bench", "torch_gpt2.py"), "PyTorch baseline script")
	return c
}

func newBenchQKLengthCmd() *cobra.Command {
	o := qklength.Options{Shape: qklength.DefaultShape}
	var cell, model, out string
	var maxMem, maxDisk float64
	c := &cobra.Command{
		Use:   "qk-length",
		Short: "Capture time, peak memory and disk size against sequence length, full storage beside --store qk",
		Long: `Captures Text(n) of a Llama-shaped model with random weights (4 layers, width 512, 8 query
heads, 2 KV heads) at each --n, with full storage (attention materialised and written) and
with --store qk, each capture in a child process so that its peak resident memory is its own,
and prints wall and CPU seconds, peak RSS, the bytes written and capture's own estimate.
A cell whose estimate exceeds --max-memory-gib or --max-disk-gib is skipped and reported.
With --svg, the memory and time curves are drawn (FILE-memory.svg, FILE-time.svg).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			defer lowerGC()() // as capture does
			if cell != "" {   // child: one capture, its Cell as JSON on stdout
				return benchQKCell(cmd, cell, model, out)
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			if o.Work, err = os.MkdirTemp("", "attnscope-qk-length-"); err != nil {
				return err
			}
			defer os.RemoveAll(o.Work)
			o.MaxMemory, o.MaxDisk = int64(maxMem*(1<<30)), int64(maxDisk*(1<<30))
			o.Child = func(ctx context.Context, dir, store string, n int, runDir string) (qklength.Cell, error) {
				b, err := exec.CommandContext(ctx, exe, "bench", "qk-length", "--cell", fmt.Sprintf("%s:%d", store, n), "--cell-model", dir, "--cell-out", runDir).Output()
				var res qklength.Cell
				if err == nil {
					err = json.Unmarshal(b, &res)
				}
				return res, err
			}
			_, err = qklength.Run(cmd.Context(), cmd.OutOrStdout(), o)
			return err
		},
	}
	c.Flags().IntSliceVar(&o.Lengths, "n", []int{1024, 2048, 4096, 8192, 16384, 32768}, "sequence lengths")
	c.Flags().StringSliceVar(&o.Stores, "store", []string{"full", "qk"}, "storages to measure")
	c.Flags().StringVar(&o.Tokenizer, "tokenizer", filepath.Join("..", "shared", "reference", "models", "tiny-llama"), "folder with tokenizer.json and tokenizer_config.json (a 4,096-entry vocabulary)")
	c.Flags().Float64Var(&maxMem, "max-memory-gib", 8, "skip cells whose memory estimate is above this")
	c.Flags().Float64Var(&maxDisk, "max-disk-gib", 8, "skip cells whose disk estimate is above this")
	c.Flags().StringVar(&o.SVG, "svg", "", "draw the curves to FILE-memory.svg and FILE-time.svg")
	c.Flags().StringVar(&cell, "cell", "", "internal: run one STORE:N capture and print it as JSON")
	c.Flags().StringVar(&model, "cell-model", "", "internal: the model folder of --cell")
	c.Flags().StringVar(&out, "cell-out", "", "internal: the run folder of --cell")
	for _, f := range []string{"cell", "cell-model", "cell-out"} {
		_ = c.Flags().MarkHidden(f)
	}
	return c
}

// benchQKCell is the child of bench qk-length: one capture, measured.
func benchQKCell(cmd *cobra.Command, cell, model, out string) error {
	store, ns, ok := strings.Cut(cell, ":")
	n, err := strconv.Atoi(ns)
	if !ok || err != nil || (store != "full" && store != "qk") {
		return usagef(cmd, "--cell must be full:N or qk:N, got %q", cell)
	}
	res, err := qklength.RunCell(cmd.Context(), model, store, n, out)
	if err != nil {
		return err
	}
	return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
}
