package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/attnscope/attnscope/capture"
	"github.com/attnscope/attnscope/internal/shard"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/store"
)

// captureFlags are capture's command-line settings.
type captureFlags struct {
	modelDir, out, promptsDir, stopLine, backend string
	truncate, intervene, storeMode, precision    string
	texts, files, chats                          []string
	generate, topK, tries, batchSize             int
	temperature, topP                            float64
	seed                                         int64
	maxTime                                      time.Duration
	sample, hidden, fp16, qkv, strict, genPrompt bool
	shard                                        shard.Shard
}

func newCaptureCmd() *cobra.Command {
	c := &captureFlags{}
	cmd := &cobra.Command{
		Use:   "capture --model DIR (--text T | --file F | --prompts DIR | --chat F.json) --out RUN",
		Short: "Run a model over texts and store every attention matrix (and hidden state) in a run folder",
		Long: `capture tokenizes each input with the tokenizer of the model folder, runs the model
(a forward pass, or with --generate a generation) and writes the run folder RUN:
run.json (provenance), samples/<id>/sample.json (text, tokens, offsets, generated tokens
with probabilities), samples/<id>/attention.safetensors (blocks.<l>.attn.pattern,
[heads, query, key]), with --hidden samples/<id>/hidden.safetensors and with --qkv
samples/<id>/qkv.safetensors (blocks.<l>.attn.hook_q|hook_k|hook_v, [heads, tokens,
head_dim], after RoPE, keys and values repeated per query head). With --store qk,
attention is computed blockwise and samples/<id>/qk.safetensors replaces
attention.safetensors: per layer hook_q [heads, tokens, head_dim], hook_k [kv_heads,
tokens, head_dim] and attn.lse [heads, tokens], each row's log-sum-exp, from which
any tile is recomputed exactly (memory and disk grow as tokens, not tokens²; the
estimate is printed before the run; sliding windows, GPT-Neo's unscaled and Gemma 2's
scaled, soft-capped scores are applied blockwise and recorded in sample.json for the
recomputation; refused with --intervene, which edits the scores blockwise attention
never holds). Tensors are
written layer by layer as the model produces them. Rerunning the same command skips the
samples already finished; an interrupted capture leaves no half-written file.

--chat takes a conversation (OpenAI / Hugging Face messages JSON: a list of {"role",
"content"}, or an object with it under "messages"), renders it through the chat template
of the model's tokenizer_config.json (with --add-generation-prompt, the header of the
assistant's turn is appended) and tokenizes the result without adding special tokens, as
transformers' apply_chat_template does.

Sample ids: "text" for one --text (text0, text1... for several), the file name for
--file and for each file of --prompts, the file name less ".json" for --chat; with
--tries N, "_<try>" is appended.`,
		Example: `  attnscope capture --model models/code-gpt2-mini --text 'def add(a, b):' --out runs/add
  attnscope capture --model models/code-gpt2-mini --prompts prompts/ --generate 100 \
      --temperature 0.2 --tries 3 --max-time 60s --stop-line 'Answer:' --out runs/followup
  attnscope capture --model models/tiny-bert --file doc.txt --hidden --fp16 --out runs/bert
  attnscope capture --model llama-3.2-1b-instruct --chat chat.json --add-generation-prompt --generate 50 --out runs/chat`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.run(cmd) },
	}
	c.register(cmd.Flags())
	return cmd
}

// register declares the flags on f.
func (c *captureFlags) register(f *pflag.FlagSet) {
	f.StringVar(&c.modelDir, "model", "", "Hugging Face model folder (config.json, model.safetensors, tokenizer.json)")
	f.StringArrayVar(&c.texts, "text", nil, "input text (repeatable)")
	f.StringArrayVar(&c.files, "file", nil, "input text file (repeatable)")
	f.StringVar(&c.promptsDir, "prompts", "", "folder whose files are the input texts, one sample per file")
	f.StringArrayVar(&c.chats, "chat", nil, "conversation JSON file rendered through the model's chat template (repeatable)")
	f.BoolVar(&c.genPrompt, "add-generation-prompt", false, "with --chat: end the rendered chat with the header of the assistant's turn")
	f.StringVar(&c.stopLine, "stop-line", "", "cut each input after the first line containing this text (that line kept), as followup-attention does with 'Answer:'")
	f.StringVarP(&c.out, "out", "o", "", "run folder to write (resumed when it exists)")
	f.IntVar(&c.generate, "generate", 0, "generate up to N new tokens per input instead of a single forward pass")
	f.BoolVar(&c.sample, "sample", false, "sample instead of greedy decoding (implied by --temperature, --top-k, --top-p)")
	f.Float64Var(&c.temperature, "temperature", 1, "sampling temperature")
	f.IntVar(&c.topK, "top-k", 0, "sample among the K most probable tokens (0: all)")
	f.Float64Var(&c.topP, "top-p", 1, "nucleus sampling: smallest set of tokens with this probability mass")
	f.Int64Var(&c.seed, "seed", 0, "seed of the sampler; try i uses seed+i")
	f.IntVar(&c.tries, "tries", 1, "generations per input")
	f.DurationVar(&c.maxTime, "max-time", 0, "stop each generation after this long (0: no limit)")
	f.BoolVar(&c.hidden, "hidden", false, "also store hidden states (embed, blocks.<l>.hook_resid_post, final_norm)")
	f.BoolVar(&c.qkv, "qkv", false, "also store every layer's queries, keys and values (blocks.<l>.attn.hook_q|hook_k|hook_v, after RoPE)")
	f.IntVar(&c.batchSize, "batch-size", 1, "run up to N forward passes as one right-padded batch (each sample is stored at its own length)")
	f.BoolVar(&c.strict, "strict", false, "refuse a checkpoint with tensors the model does not use (e.g. more layers than config.json says) instead of warning")
	f.BoolVar(&c.fp16, "fp16", false, "store tensors as float16 (half the disk space)")
	f.StringVar(&c.storeMode, "store", "full", "full: store every attention weight; qk: compute attention blockwise and store post-RoPE queries, keys (kv heads once) and each row's log-sum-exp (qk.safetensors; with --qkv values too), from which any tile is recomputed: for long contexts")
	f.StringVar(&c.precision, "attention-precision", "float32", "float32: attention scores, softmax and pattern·v in float32 (as PyTorch's eager attention); float64: in float64, rounded once to float32, so that --store qk tiles equal a full capture's within 1e-6 (slower; recorded in run.json)")
	f.StringVar(&c.truncate, "truncate", "", "cut inputs longer than the model's context to fit: left drops their start, right their end (recorded in sample.json and run.json; default: refuse them)")
	f.StringVar(&c.intervene, "intervene", "", "YAML file of edits applied during each forward pass and generation step (zero/scale/add/set/noise/patch at hook points; recorded in run.json)")
	f.StringVar(&c.backend, "backend", "", "GoMLX backend (default: $GOMLX_BACKEND, else the pure-Go backend)")
	shard.AddFlag(f, &c.shard)
}

// validate checks the flags' combinations; samplingFlags reports whether a sampling
// flag was given.
func (c *captureFlags) validate(cmd *cobra.Command) (samplingFlags bool, err error) {
	if c.modelDir == "" || c.out == "" {
		return false, usagef(cmd, "--model and --out are required")
	}
	n := 0
	for _, used := range []bool{len(c.texts) > 0, len(c.files) > 0, c.promptsDir != "", len(c.chats) > 0} {
		if used {
			n++
		}
	}
	if n != 1 {
		return false, usagef(cmd, "give the inputs with exactly one of --text, --file, --prompts or --chat")
	}
	if c.genPrompt && len(c.chats) == 0 {
		return false, usagef(cmd, "--add-generation-prompt needs --chat")
	}
	if c.truncate != "" && c.truncate != "left" && c.truncate != "right" {
		return false, usagef(cmd, "--truncate must be left or right, got %q", c.truncate)
	}
	if c.storeMode != "full" && c.storeMode != "qk" {
		return false, usagef(cmd, "--store must be full or qk, got %q", c.storeMode)
	}
	if c.precision != "float32" && c.precision != "float64" {
		return false, usagef(cmd, "--attention-precision must be float32 or float64, got %q", c.precision)
	}
	if c.tries < 1 {
		return false, usagef(cmd, "--tries must be at least 1, got %d", c.tries)
	}
	if c.generate < 0 {
		return false, usagef(cmd, "--generate must be positive, got %d", c.generate)
	}
	fl := cmd.Flags()
	samplingFlags = fl.Changed("temperature") || fl.Changed("top-k") || fl.Changed("top-p") || c.sample
	if c.generate == 0 && (samplingFlags || c.tries > 1 || fl.Changed("max-time") || fl.Changed("seed")) {
		return false, usagef(cmd, "--sample, --temperature, --top-k, --top-p, --seed, --tries and --max-time need --generate N")
	}
	if c.temperature < 0 || c.topK < 0 || c.topP < 0 || c.topP > 1 {
		return false, usagef(cmd, "--temperature and --top-k must be non-negative and --top-p within [0, 1]")
	}
	return samplingFlags, nil
}

// run captures the inputs into the run folder.
func (c *captureFlags) run(cmd *cobra.Command) error {
	samplingFlags, err := c.validate(cmd)
	if err != nil {
		return err
	}
	defer lowerGC()()
	inputs, err := captureInputs(c.texts, c.files, c.promptsDir, c.stopLine)
	if err != nil {
		return err
	}
	for _, p := range c.chats {
		in, err := capture.ChatInput(c.modelDir, p, c.genPrompt)
		if err != nil {
			return err
		}
		inputs = append(inputs, in)
	}
	opts := capture.Options{
		ModelDir: c.modelDir, Tries: c.tries, Hidden: c.hidden, QKV: c.qkv, QK: c.storeMode == "qk", FP16: c.fp16, Backend: c.backend, BatchSize: c.batchSize, Strict: c.strict, Truncate: c.truncate,
		Float64Attention: c.precision == "float64", Command: commandLine(cmd, nil), Shard: c.shard,
	}
	if c.intervene != "" {
		if opts.Intervention, err = model.ReadIntervention(c.intervene); err != nil {
			return err
		}
	}
	if c.generate > 0 {
		opts.Generate = &model.GenerateOptions{
			MaxNewTokens: c.generate, MaxTime: c.maxTime, DoSample: samplingFlags,
			Temperature: c.temperature, TopK: c.topK, TopP: c.topP, Seed: c.seed,
		}
	}
	dir, push, err := store.Stage(cmd.Context(), c.out, writerName("capture", c.shard))
	if err != nil {
		return err
	}
	var closeProgress func()
	opts.Progress, closeProgress = captureProgress(cmd.ErrOrStderr(), len(inputs)*c.tries)
	sum, err := capture.Run(cmd.Context(), dir, inputs, opts)
	closeProgress()
	// What was finished goes up even when the capture failed, so a rerun resumes.
	if perr := push(cmd.Context()); err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "captured %d samples into %s (%d already finished, skipped); %d graphs compiled\n",
		sum.Captured, c.out, sum.Skipped, sum.CompiledGraphs)
	return nil
}

// commandLine rebuilds the command line from the flags set and the positional
// arguments, for run.json.
func commandLine(cmd *cobra.Command, args []string) []string {
	line := strings.Fields(cmd.CommandPath())
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			for _, v := range sv.GetSlice() {
				line = append(line, "--"+f.Name+"="+v)
			}
			return
		}
		line = append(line, "--"+f.Name+"="+f.Value.String())
	})
	return append(line, args...)
}

// languageOf guesses a source file's programming language from its extension.
func languageOf(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".py":
		return "python"
	case ".go":
		return "go"
	case ".cpp", ".cc", ".cxx", ".hpp", ".h", ".c":
		return "cpp"
	case ".cs":
		return "csharp"
	case ".java":
		return "java"
	case ".js", ".mjs":
		return "javascript"
	}
	return ""
}

// cutAfterLine keeps text up to and including the first line containing stop.
func cutAfterLine(text, stop string) string {
	i := strings.Index(text, stop)
	if stop == "" || i < 0 {
		return text
	}
	if j := strings.IndexByte(text[i:], '\n'); j >= 0 {
		return text[:i+j+1]
	}
	return text
}

func readInputFile(path, stopLine string) (capture.Input, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return capture.Input{}, err
	}
	if !utf8.Valid(b) {
		return capture.Input{}, fmt.Errorf("read %s: the file is not UTF-8 text", path)
	}
	name := filepath.Base(path)
	return capture.Input{ID: store.SampleID(name), Text: cutAfterLine(string(b), stopLine), Source: path, Language: languageOf(name)}, nil
}

func captureInputs(texts, files []string, promptsDir, stopLine string) ([]capture.Input, error) {
	var inputs []capture.Input
	for i, t := range texts {
		id := "text"
		if len(texts) > 1 {
			id = fmt.Sprintf("text%d", i)
		}
		inputs = append(inputs, capture.Input{ID: id, Text: cutAfterLine(t, stopLine)})
	}
	for _, p := range files {
		in, err := readInputFile(p, stopLine)
		if err != nil {
			return nil, err
		}
		inputs = append(inputs, in)
	}
	if promptsDir != "" {
		entries, err := os.ReadDir(promptsDir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			in, err := readInputFile(filepath.Join(promptsDir, e.Name()), stopLine)
			if err != nil {
				return nil, err
			}
			inputs = append(inputs, in)
		}
		if len(inputs) == 0 {
			return nil, fmt.Errorf("read %s: the folder holds no input files", promptsDir)
		}
	}
	return inputs, nil
}
