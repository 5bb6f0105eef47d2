// Package capture runs a model over input texts and streams every attention matrix
// (and optionally hidden state) into a run folder (package store), one layer at a
// time. A rerun into the same folder skips the samples already finished.
package capture

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/attnscope/attnscope/internal/buildinfo"
	"github.com/attnscope/attnscope/internal/shard"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/model/arch"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tokenizer"
)

// Input is one text to capture.
type Input struct {
	ID       string // sample id (try suffixes are added for several tries)
	Text     string
	Source   string // file the text came from ("" for a literal text)
	Language string // programming language of the text, if known
	// Truncated is set by Run when it cut the text to fit the context (Options.Truncate).
	Truncated *store.Truncation
	// Rendered marks a text that already holds its special tokens (a rendered chat
	// template, see ChatInput): it is tokenized without adding the tokenizer's own, as
	// transformers' apply_chat_template does.
	Rendered bool
}

// Options configure a capture.
type Options struct {
	ModelDir string
	// Generate, when non-nil, continues each input with model.Generate instead of a
	// single forward pass; the attention stored is the assembled generation matrix.
	Generate *model.GenerateOptions
	// Tries is the number of generations per input (seeds Generate.Seed+i); 1 when ≤ 0.
	Tries  int
	Hidden bool // also store hidden states
	// QKV also stores every layer's queries, keys and values (qkv.safetensors,
	// after RoPE where the family applies it).
	QKV bool
	// QK stores, instead of the attention probabilities, per layer the post-RoPE
	// queries, the keys (grouped-query heads once) and each attention row's
	// log-sum-exp (qk.safetensors; with QKV the values too), computing attention
	// blockwise so that no layer holds a [tokens, tokens] matrix (--store qk).
	// Samples run one at a time; Generate is refused.
	QK   bool
	FP16 bool // store tensors as float16
	// Info receives notices such as the memory estimate (nil: standard error).
	Info func(msg string)
	// BatchSize runs up to this many forward passes as one right-padded batch
	// (model.ForwardBatch); ≤ 1: one at a time. Ignored with Generate. Each
	// sample is stored at its own length, equal to a capture alone within
	// float32 rounding.
	BatchSize int
	// Strict refuses a checkpoint with tensors the model does not use (such as
	// more layers than config.json declares); otherwise Warn hears of them.
	Strict bool
	// Warn receives warnings (nil: standard error).
	Warn func(msg string)
	// Backend is the GoMLX backend ("" = default pure-Go backend).
	Backend string
	// Float64Attention computes attention scores, softmax and pattern·v in float64
	// (model.LoadOptions.Float64Attention; --attention-precision float64), recorded
	// in run.json as attention_precision.
	Float64Attention bool
	// Command is the command line recorded in run.json.
	Command []string
	// Truncate, "left" or "right", cuts inputs longer than the model's context (less the
	// generated tokens) to fit, dropping their start or their end; "" refuses them.
	Truncate string
	// Intervention, when set, edits activations in every forward pass
	// (model.Intervention) and, with Generate, in every decode step; its file
	// is recorded in run.json.
	Intervention *model.InterventionFile
	// Progress, when set, is called after each sample with the number of samples
	// done (finished or skipped) of total.
	Progress func(done, total int, id string, skipped bool, elapsed time.Duration)
	// Shard, when set (--shard i/n), captures only the samples (ids with their try
	// suffix) that package shard assigns to it, and keeps RUN/shards/capture-shard-<i>-of-<n>.json
	// up to date with the samples it finished.
	Shard shard.Shard
}

// Summary counts what a capture did.
type Summary struct {
	Captured, Skipped int
	CompiledGraphs    int
}

// modelFiles are the files whose hashes identify a model folder: weights and tokenizer.
func modelFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read model folder %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		// Follow symbolic links: the Hugging Face cache links snapshot files to blobs.
		if st, err := os.Stat(filepath.Join(dir, n)); err != nil || !st.Mode().IsRegular() {
			continue
		}
		if n == "reference.safetensors" || n == "reference.json" {
			continue // test fixtures that sit beside some checkpoints
		}
		if strings.HasSuffix(n, ".safetensors") || n == "model.safetensors.index.json" ||
			strings.HasPrefix(n, "tokenizer") || n == "vocab.json" || n == "vocab.txt" ||
			n == "merges.txt" || n == "special_tokens_map.json" || n == "config.json" || n == "generation_config.json" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}

// HashModel returns the model folder's weight, tokenizer and config files with their SHA-256.
func HashModel(ctx context.Context, dir string) ([]store.FileHash, error) {
	names, err := modelFiles(dir)
	if err != nil {
		return nil, err
	}
	out := make([]store.FileHash, 0, len(names))
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		size, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, n), err)
		}
		out = append(out, store.FileHash{Name: n, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))})
	}
	return out, nil
}

// prepared is an input tokenized and checked against the context length.
type prepared struct {
	in  Input
	enc *tokenizer.Encoding
}

// Run captures inputs into the run folder out (created, or resumed when it already
// holds a run of the same model and settings).
func Run(ctx context.Context, out string, inputs []Input, opts Options) (*Summary, error) {
	if len(inputs) == 0 {
		return nil, errors.New("capture: no input texts")
	}
	tries := max(opts.Tries, 1)
	if tries > 1 && opts.Generate == nil {
		return nil, errors.New("capture: several tries need generation (--generate)")
	}
	seen := map[string]bool{}
	for _, in := range inputs {
		if err := store.CheckSampleID(in.ID); err != nil {
			return nil, fmt.Errorf("capture: %w", err)
		}
		if seen[in.ID] {
			return nil, fmt.Errorf("capture: two inputs have the sample id %q", in.ID)
		}
		seen[in.ID] = true
	}
	cfg, err := model.ReadConfig(opts.ModelDir)
	if err != nil {
		return nil, err
	}
	a, err := model.Architecture(cfg)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(opts.ModelDir, "config.json"), err)
	}
	if opts.QK && opts.Backend == "" && os.Getenv("GOMLX_BACKEND") == "" {
		// Run blockwise attention's tiles one query block after another, freeing each
		// before the next: the default dependency-order schedule starts every query
		// block's tiles together (18 GB at 32k tokens instead of a few hundred MB).
		opts.Backend = QKBackend
	}
	if opts.QK && opts.Generate != nil {
		return nil, errors.New("capture: --store qk stores a forward pass; it cannot be combined with --generate")
	}
	if err := model.CheckQK(cfg, a, forwardOptions(opts)); err != nil {
		return nil, fmt.Errorf("capture: model %s: %w", opts.ModelDir, err)
	}
	if opts.Generate != nil && !a.Causal() {
		return nil, fmt.Errorf("capture: model %s is an encoder (%s); --generate needs a decoder model", opts.ModelDir, cfg.ModelType)
	}
	tk, err := tokenizer.Load(opts.ModelDir)
	if err != nil {
		return nil, err
	}
	// Tokenize and check every input before loading the model or writing anything.
	var work []prepared
	for _, in := range inputs {
		enc, err := tk.Encode(in.Text, !in.Rendered)
		if err != nil {
			return nil, fmt.Errorf("tokenize input %s: %w", describe(in), err)
		}
		if len(enc.IDs) == 0 {
			return nil, fmt.Errorf("input %s: the text gives no tokens", describe(in))
		}
		need := len(enc.IDs)
		if opts.Generate != nil {
			need += opts.Generate.MaxNewTokens
		}
		if cfg.MaxPositions > 0 && need > cfg.MaxPositions && opts.Truncate != "" {
			gen := need - len(enc.IDs)
			if in, enc, err = truncateInput(tk, in, enc, cfg.MaxPositions-gen, opts.Truncate); err != nil {
				return nil, err
			}
			need = len(enc.IDs) + gen
		}
		if cfg.MaxPositions > 0 && need > cfg.MaxPositions {
			extra := ""
			if opts.Generate != nil {
				extra = fmt.Sprintf(" plus %d generated", opts.Generate.MaxNewTokens)
			}
			return nil, fmt.Errorf("input %s: %d tokens%s exceed the model's context of %d positions (max_position_embeddings in %s)",
				describe(in), len(enc.IDs), extra, cfg.MaxPositions, filepath.Join(opts.ModelDir, "config.json"))
		}
		work = append(work, prepared{in: in, enc: enc})
	}

	meta, err := newMeta(ctx, cfg, a.Causal(), opts)
	if err != nil {
		return nil, err
	}
	for _, in := range inputs {
		if in.Source != "" {
			meta.Inputs = append(meta.Inputs, in.Source)
		}
	}
	meta.Truncate = opts.Truncate
	var m model.Model
	defer func() {
		if m != nil {
			m.Close()
		}
	}()
	if _, err := os.Stat(filepath.Join(out, store.RunFile)); err != nil {
		// A new run: load the model first, so that a corrupt checkpoint leaves no
		// run folder behind. (Resuming loads it only if a sample is left to do.)
		if m, err = model.Load(opts.ModelDir, model.LoadOptions{Backend: opts.Backend, Strict: opts.Strict, Warn: opts.Warn, Float64Attention: opts.Float64Attention}); err != nil {
			return nil, err
		}
	}
	if opts.Intervention != nil {
		if meta.Intervention, err = prepareIntervention(ctx, &m, tk, work, opts); err != nil {
			return nil, err
		}
	}
	run, err := openOrCreate(out, meta)
	if err != nil {
		return nil, err
	}
	type job struct {
		p   prepared
		id  string
		try int
	}
	var jobs []job
	for _, p := range work {
		for t := range tries {
			id := p.in.ID
			if tries > 1 {
				id = fmt.Sprintf("%s_%d", p.in.ID, t)
			}
			if opts.Shard.Has(id) {
				jobs = append(jobs, job{p, id, t})
			}
		}
	}
	manifest := func(string) error { return nil }
	if opts.Shard.Sharded() {
		m := store.ShardManifest{Command: "capture", Index: opts.Shard.Index, Count: opts.Shard.Count, Finished: []string{}}
		for _, j := range jobs {
			m.Assigned = append(m.Assigned, j.id)
		}
		manifest = func(id string) error {
			if id != "" {
				m.Finished = append(m.Finished, id)
			}
			return run.WriteShardManifest(m)
		}
		if err := manifest(""); err != nil {
			return nil, err
		}
	}
	sum := &Summary{}
	batch := max(opts.BatchSize, 1)
	if opts.Generate != nil || opts.QK {
		batch = 1
	}
	longest := 0
	for _, p := range work {
		longest = max(longest, len(p.enc.IDs))
	}
	if opts.Generate != nil {
		longest += opts.Generate.MaxNewTokens
	}
	info(opts, "capture: "+EstimateMemory(cfg, a, longest, batch, opts).String())
	var chunk []job
	var at []int // positions of chunk's jobs in jobs
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		defer func() { chunk, at = chunk[:0], at[:0] }()
		if m == nil {
			if m, err = model.Load(opts.ModelDir, model.LoadOptions{Backend: opts.Backend, Strict: opts.Strict, Warn: opts.Warn, Float64Attention: opts.Float64Attention}); err != nil {
				return err
			}
		}
		start := time.Now()
		if len(chunk) == 1 {
			err = captureOne(ctx, run, m, tk, chunk[0].p, chunk[0].id, chunk[0].try, opts)
		} else {
			items := make([]batchItem, len(chunk))
			for k, j := range chunk {
				items[k] = batchItem{j.p, j.id}
			}
			err = captureBatch(ctx, run, m, items, opts)
		}
		if err != nil {
			return err
		}
		for _, j := range chunk {
			if err := manifest(j.id); err != nil {
				return err
			}
		}
		sum.Captured += len(chunk)
		if opts.Progress != nil {
			each := time.Since(start) / time.Duration(len(chunk))
			for k, j := range chunk {
				opts.Progress(at[k]+1, len(jobs), j.id, false, each)
			}
		}
		return nil
	}
	for i, j := range jobs {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		if run.Finished(j.id) {
			if err := manifest(j.id); err != nil {
				return sum, err
			}
			sum.Skipped++
			if opts.Progress != nil {
				opts.Progress(i+1, len(jobs), j.id, true, 0)
			}
			continue
		}
		chunk, at = append(chunk, j), append(at, i)
		if len(chunk) == batch {
			if err := flush(); err != nil {
				return sum, err
			}
		}
	}
	if err := flush(); err != nil {
		return sum, err
	}
	if m != nil {
		sum.CompiledGraphs = m.CompiledGraphs()
		run.Meta.CompiledGraphs = sum.CompiledGraphs
	}
	end := time.Now().UTC()
	run.Meta.EndTime = &end
	if err := run.WriteMeta(); err != nil {
		return sum, err
	}
	return sum, nil
}

func describe(in Input) string {
	if in.Source != "" {
		return fmt.Sprintf("%q (%s)", in.ID, in.Source)
	}
	return fmt.Sprintf("%q", in.ID)
}

func newMeta(ctx context.Context, cfg *arch.Config, causal bool, opts Options) (store.Meta, error) {
	files, err := HashModel(ctx, opts.ModelDir)
	if err != nil {
		return store.Meta{}, err
	}
	rawCfg, err := os.ReadFile(filepath.Join(opts.ModelDir, "config.json"))
	if err != nil {
		return store.Meta{}, err
	}
	var compact json.RawMessage
	if err := json.Unmarshal(rawCfg, &compact); err != nil {
		return store.Meta{}, fmt.Errorf("read %s: %w", filepath.Join(opts.ModelDir, "config.json"), err)
	}
	dtype := "float32"
	if opts.FP16 {
		dtype = "float16"
	}
	backend := opts.Backend
	if backend == "" {
		backend = os.Getenv("GOMLX_BACKEND")
	}
	if backend == "" {
		backend = "go"
	}
	mask := "causal mask"
	if !causal {
		mask = "padding mask"
	}
	meta := store.Meta{
		Version: buildinfo.Version(),
		Command: opts.Command,
		Kind:    "capture",
		Model: &store.ModelInfo{
			Dir:       opts.ModelDir,
			ModelType: cfg.ModelType,
			Files:     files,
			Config:    compact,
		},
		DType:                   dtype,
		ComputeDType:            "float32",
		AttentionPrecision:      attentionPrecision(opts.Float64Attention),
		AttentionImplementation: attentionImplementation(mask+windowNote(cfg), opts.QK) + scaleNote(cfg.ModelType),
		Backend:                 backend,
		Hidden:                  opts.Hidden,
		QKV:                     opts.QKV,
		Store:                   storeMode(opts.QK),
		StartTime:               time.Now().UTC(),
	}
	if g := opts.Generate; g != nil {
		meta.Generation = &store.GenerationSettings{
			MaxNewTokens: g.MaxNewTokens, DoSample: g.DoSample, Temperature: g.Temperature,
			TopK: g.TopK, TopP: g.TopP, Seed: g.Seed, Tries: max(opts.Tries, 1),
			MaxTimeSeconds: g.MaxTime.Seconds(), EOS: g.EOS,
		}
	}
	return meta, nil
}

// attentionPrecision is run.json's attention_precision for capture's Float64Attention.
func attentionPrecision(f64 bool) string {
	if f64 {
		return "float64"
	}
	return "float32"
}

// attentionPrecisionOf is a run's attention precision; runs written before it was
// recorded computed attention in float32.
func attentionPrecisionOf(m store.Meta) string {
	if m.AttentionPrecision == "" {
		return "float32"
	}
	return m.AttentionPrecision
}

// windowNote describes the sliding windows of a config's layers ("" when none).
func windowNote(cfg *arch.Config) string {
	var n int
	for l := range cfg.Layers {
		if cfg.Window(l) > 0 {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", sliding window of %d keys on %d of %d layers", cfg.SlidingWindow, n, cfg.Layers)
}

// scaleNote names the families whose scores differ from Q·Kᵀ/√head_dim.
func scaleNote(modelType string) string {
	switch modelType {
	case "gpt_neo":
		return " (GPT-Neo: scores not scaled)"
	case "gemma2":
		return " (Gemma 2: scaled by query_pre_attn_scalar^-1/2, soft-capped by attn_logit_softcapping)"
	}
	return ""
}

// openOrCreate creates the run, or opens an existing one after checking that it
// was captured from the same model files with the same settings.
func openOrCreate(dir string, meta store.Meta) (*store.Run, error) {
	if _, err := os.Stat(filepath.Join(dir, store.RunFile)); err != nil {
		return store.Create(dir, meta)
	}
	run, err := store.Open(dir)
	if err != nil {
		return nil, err
	}
	old := run.Meta
	why := ""
	switch {
	case old.Kind != "capture" || old.Model == nil:
		why = "it is not a capture run"
	case !reflect.DeepEqual(old.Model.Files, meta.Model.Files):
		why = "its model files (sha256 in run.json) differ from " + meta.Model.Dir
	case old.DType != meta.DType:
		why = fmt.Sprintf("it stores %s, this capture %s", old.DType, meta.DType)
	case old.Hidden != meta.Hidden:
		why = fmt.Sprintf("its hidden setting is %v, this capture's %v", old.Hidden, meta.Hidden)
	case old.Store != meta.Store:
		why = fmt.Sprintf("its attention is stored as %q, this capture's as %q", storeName(old.Store), storeName(meta.Store))
	case old.QKV != meta.QKV:
		why = fmt.Sprintf("its qkv setting is %v, this capture's %v", old.QKV, meta.QKV)
	case attentionPrecisionOf(old) != meta.AttentionPrecision:
		why = fmt.Sprintf("its attention precision is %s, this capture's %s", attentionPrecisionOf(old), meta.AttentionPrecision)
	case !reflect.DeepEqual(old.Generation, meta.Generation):
		why = "its generation settings differ"
	case !reflect.DeepEqual(old.Intervention, meta.Intervention):
		why = "its intervention (run.json \"intervention\") differs"
	}
	if why != "" {
		return nil, fmt.Errorf("resume run %s: %s; use another --out folder", dir, why)
	}
	run.Meta.AddCommand(meta.Command)
	run.Meta.Version = meta.Version
	for _, in := range meta.Inputs {
		if !slices.Contains(run.Meta.Inputs, in) {
			run.Meta.Inputs = append(run.Meta.Inputs, in)
		}
	}
	run.Meta.EndTime = nil
	if err := run.WriteMeta(); err != nil {
		return nil, err
	}
	return run, nil
}

func captureOne(ctx context.Context, run *store.Run, m model.Model, tk *tokenizer.Tokenizer, p prepared, id string, try int, opts Options) error {
	cfg := m.Config()
	a, err := model.Architecture(cfg)
	if err != nil {
		return err
	}
	so := store.SampleOptions{
		Layers: cfg.Layers, Hidden: opts.Hidden, QKV: opts.QKV && !opts.QK, FinalNorm: len(a.FinalParams()) > 0, FP16: opts.FP16,
		QK: opts.QK, QKValues: opts.QK && opts.QKV, Causal: a.Causal(), KVHeads: a.KVHeads(),
	}
	if opts.QK {
		so.QKScale, so.QKSoftCap, so.QKWindows = model.QKScores(cfg, a)
	}
	w, err := run.NewSample(id, so)
	if err != nil {
		return err
	}
	defer w.Abort()
	start := time.Now()
	s := &store.Sample{
		ID: id, Text: p.in.Text, PromptText: p.in.Text,
		IDs: slices.Clone(p.enc.IDs), Tokens: slices.Clone(p.enc.Tokens), Offsets: slices.Clone(p.enc.Offsets), PromptLen: len(p.enc.IDs),
		Try: try, Source: p.in.Source, Language: p.in.Language, Truncated: p.in.Truncated,
	}
	if opts.Generate == nil {
		if _, err := m.Forward(ctx, model.Input{IDs: p.enc.IDs}, w, forwardOptions(opts)); err != nil {
			return fmt.Errorf("sample %s: %w", id, err)
		}
	} else {
		g := *opts.Generate
		g.Seed += int64(try)
		if opts.Intervention != nil {
			g.Intervention = opts.Intervention.Intervention
		}
		gen, err := m.Generate(ctx, p.enc.IDs, g, w)
		if err != nil {
			return fmt.Errorf("sample %s: %w", id, err)
		}
		if opts.Hidden || opts.QKV {
			// Generate records attention only; the hidden states (and queries, keys
			// and values) of the positions the attention covers (all tokens but the
			// last) come from one forward pass over them, which is what the cached
			// steps computed.
			only := model.RecorderFunc(func(name string, shape []int, data []float32) error {
				if strings.HasSuffix(name, ".attn.pattern") {
					return nil
				}
				return w.Record(name, shape, data)
			})
			if _, err := m.Forward(ctx, model.Input{IDs: gen.IDs[:len(gen.IDs)-1]}, only, forwardOptions(opts)); err != nil {
				return fmt.Errorf("sample %s: hidden states: %w", id, err)
			}
		}
		if err := addGeneration(s, tk, gen); err != nil {
			return fmt.Errorf("sample %s: %w", id, err)
		}
		if g.DoSample {
			seed := g.Seed
			s.Seed = &seed
		}
	}
	s.Seconds = time.Since(start).Seconds()
	return w.Commit(s)
}

// batchItem is one sample of a batched capture.
type batchItem struct {
	p  prepared
	id string
}

// captureBatch runs items as one right-padded batch (model.ForwardBatch) and
// stores each sample at its own length: its recorder drops the padded rows
// and keys (which the mask kept from touching the real ones).
func captureBatch(ctx context.Context, run *store.Run, m model.Model, items []batchItem, opts Options) error {
	cfg := m.Config()
	a, err := model.Architecture(cfg)
	if err != nil {
		return err
	}
	N := 0
	for _, it := range items {
		N = max(N, len(it.p.enc.IDs))
	}
	ins := make([]model.Input, len(items))
	recs := make([]model.Recorder, len(items))
	writers := make([]*store.SampleWriter, len(items))
	defer func() {
		for _, w := range writers {
			if w != nil {
				w.Abort()
			}
		}
	}()
	for k, it := range items {
		n := len(it.p.enc.IDs)
		ids, mask := make([]int, N), make([]int, N)
		copy(ids, it.p.enc.IDs)
		for i := range n {
			mask[i] = 1
		}
		ins[k] = model.Input{IDs: ids, AttentionMask: mask}
		w, err := run.NewSample(it.id, store.SampleOptions{
			Layers: cfg.Layers, Hidden: opts.Hidden, QKV: opts.QKV, FinalNorm: len(a.FinalParams()) > 0, FP16: opts.FP16,
		})
		if err != nil {
			return err
		}
		writers[k] = w
		recs[k] = trimmed(w, n, N)
	}
	start := time.Now()
	if _, err := m.ForwardBatch(ctx, ins, recs, forwardOptions(opts)); err != nil {
		return fmt.Errorf("batch of samples %s..%s: %w", items[0].id, items[len(items)-1].id, err)
	}
	secs := time.Since(start).Seconds() / float64(len(items))
	for k, it := range items {
		p := it.p
		s := &store.Sample{
			ID: it.id, Text: p.in.Text, PromptText: p.in.Text,
			IDs: slices.Clone(p.enc.IDs), Tokens: slices.Clone(p.enc.Tokens), Offsets: slices.Clone(p.enc.Offsets), PromptLen: len(p.enc.IDs),
			Source: p.in.Source, Language: p.in.Language, Seconds: secs,
		}
		if err := writers[k].Commit(s); err != nil {
			return err
		}
	}
	return nil
}

// trimmed passes rec the first n of N token positions of every tensor: the
// query and key axes of an attention pattern [heads, N, N], the token axis of
// queries/keys/values [heads, N, head_dim] and of hidden states [N, width].
func trimmed(rec model.Recorder, n, N int) model.Recorder {
	if n == N {
		return rec
	}
	var buf []float32
	return model.RecorderFunc(func(name string, shape []int, data []float32) error {
		buf = buf[:0]
		out := slices.Clone(shape)
		switch {
		case strings.HasSuffix(name, ".attn.pattern") && len(shape) == 3:
			for h := range shape[0] {
				for i := range n {
					off := (h*N + i) * N
					buf = append(buf, data[off:off+n]...)
				}
			}
			out[1], out[2] = n, n
		case len(shape) == 3:
			cols := shape[2]
			for h := range shape[0] {
				buf = append(buf, data[h*N*cols:(h*N+n)*cols]...)
			}
			out[1] = n
		case len(shape) == 2:
			buf = append(buf, data[:n*shape[1]]...)
			out[0] = n
		default:
			return fmt.Errorf("capture: %s has shape %v, which a batch cannot trim", name, shape)
		}
		return rec.Record(name, out, buf)
	})
}

// addGeneration appends the generated tokens to s: ids, token strings,
// probabilities, the decoded continuation appended to Text, and each generated
// token's character span in Text (from decoding growing prefixes, so that
// tokens that complete a multi-byte character get the character).
func addGeneration(s *store.Sample, tk *tokenizer.Tokenizer, gen *model.Generation) error {
	prompt := gen.IDs[:gen.PromptLen]
	base, err := tk.Decode(prompt, false)
	if err != nil {
		return err
	}
	baseRunes := utf8.RuneCountInString(s.Text)
	prev := ""
	var cont string
	for i, id := range gen.IDs[gen.PromptLen:] {
		full, err := tk.Decode(gen.IDs[:gen.PromptLen+i+1], false)
		if err != nil {
			return err
		}
		cur, ok := strings.CutPrefix(full, base)
		if !ok {
			// The decoder rewrote the prompt's end; fall back to decoding the
			// continuation alone.
			if cur, err = tk.Decode(gen.IDs[gen.PromptLen:gen.PromptLen+i+1], false); err != nil {
				return err
			}
		}
		startRunes := utf8.RuneCountInString(commonPrefix(prev, cur))
		endRunes := utf8.RuneCountInString(cur)
		tok, _ := tk.IDToToken(id)
		prob := 0.0
		if i < len(gen.NewTokenProbs) {
			prob = gen.NewTokenProbs[i]
		}
		s.IDs = append(s.IDs, id)
		s.Tokens = append(s.Tokens, tok)
		s.Offsets = append(s.Offsets, [2]int{baseRunes + startRunes, baseRunes + max(endRunes, startRunes)})
		s.Generated = append(s.Generated, store.GeneratedToken{ID: id, Token: tok, Prob: prob})
		prev, cont = cur, cur
	}
	s.Text += cont
	s.PromptLen = gen.PromptLen
	s.StopReason = gen.StopReason
	return nil
}

func commonPrefix(a, b string) string {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	for i > 0 && i < len(b) && !utf8.RuneStart(b[i]) {
		i--
	}
	return b[:i]
}
