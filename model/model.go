// Package model runs Hugging Face transformer checkpoints (GPT-2, BERT,
// Llama/Mistral/Qwen2, GPT-NeoX) natively and hands every attention matrix and
// hidden state to a Recorder as the forward pass produces them, layer by layer.
//
// Load reads a model folder (config.json + model.safetensors or a sharded
// model.safetensors.index.json) and dispatches on config.json's model_type.
// The package knows nothing of output files: callers (package capture) decide
// what to keep.
package model

import (
	"context"
	"time"

	"github.com/attnscope/attnscope/model/arch"
)

// Recorder receives tensors as the forward pass produces them, named with
// TransformerLens hook names, row-major float32:
//
//	"embed"                      [tokens, width]   embedding output (token + position (+ type) embeddings, BERT after its LayerNorm)
//	"blocks.<l>.attn.pattern"    [heads, query, key] post-softmax attention of layer l
//	"blocks.<l>.attn.hook_q"     [heads, tokens, head_dim]    (ForwardOptions.QKV; after RoPE where the model uses it)
//	"blocks.<l>.attn.hook_k"     [kv_heads, tokens, head_dim] (ForwardOptions.QKV; after RoPE)
//	"blocks.<l>.attn.hook_v"     [kv_heads, tokens, head_dim] (ForwardOptions.QKV)
//	"blocks.<l>.attn.hook_attn_scores" [heads, query, key] (ForwardOptions.Internals; masked, before softmax)
//	"blocks.<l>.attn.hook_z"     [heads, tokens, head_dim] (ForwardOptions.Internals; pattern·v per head)
//	"blocks.<l>.hook_resid_post" [tokens, width]   residual stream after block l
//	"blocks.<l>.hook_attn_preln" [tokens, width]   (ForwardOptions.PreLN; post-norm families: BERT) x + Attn(x) entering the attention LayerNorm
//	"blocks.<l>.hook_mlp_preln"  [tokens, width]   (ForwardOptions.PreLN) x + FFN(x) entering the output LayerNorm
//	"final_norm"                 [tokens, width]   final norm output (models with a final norm; not BERT)
//
// "embed", "hook_resid_post" and "final_norm" are sent only with
// ForwardOptions.Hidden. For layer l, all of its tensors are recorded before
// layer l+1 is computed, in the order pattern, q, k, v, attn_preln, mlp_preln, resid_post. data (and
// shape) may be reused after Record returns: copy what you keep. A non-nil
// error from Record stops the forward pass and is returned, wrapped.
//
// In Hugging Face terms: hidden_states[0] = embed, hidden_states[l+1] =
// blocks.<l>.hook_resid_post for l < L-1, and hidden_states[L] = final_norm
// (for BERT, blocks.<L-1>.hook_resid_post).
type Recorder interface {
	Record(name string, shape []int, data []float32) error
}

// RecorderFunc adapts a function to a Recorder.
type RecorderFunc func(name string, shape []int, data []float32) error

// Record calls f.
func (f RecorderFunc) Record(name string, shape []int, data []float32) error {
	return f(name, shape, data)
}

// Input is one sequence of token ids (special tokens included, as the tokenizer
// produced them).
type Input struct {
	IDs []int
	// TokenTypeIDs (BERT segment ids); nil means all zero.
	TokenTypeIDs []int
	// AttentionMask is 1 for real tokens and 0 for padding; nil means all ones.
	// Used by ForwardBatch for right-padded batches.
	AttentionMask []int
}

// Logits selects which logits Forward computes. Capture usually needs none,
// which skips the LM head (the largest matrix multiply of small models).
type Logits int

const (
	LogitsNone Logits = iota // no LM head
	LogitsLast               // [vocab] logits of the last position
	LogitsAll                // [tokens, vocab] logits of every position
)

// ForwardOptions selects what a forward pass records and returns.
type ForwardOptions struct {
	Hidden bool // record embed, blocks.<l>.hook_resid_post, final_norm
	QKV    bool // record blocks.<l>.attn.hook_q/hook_k/hook_v
	// PreLN records blocks.<l>.hook_attn_preln and hook_mlp_preln, the residual
	// sums entering the LayerNorms of post-norm families (an error for others).
	PreLN bool
	// QK computes attention blockwise (arch.BlockwiseAttention, never holding a
	// layer's [T, T] scores) and records, per layer, blocks.<l>.attn.hook_q
	// [heads, tokens, head_dim], hook_k [kv_heads, tokens, head_dim] (grouped-query
	// keys once), blocks.<l>.attn.lse and attn.lse_lo [heads, tokens] (each row's
	// float64 log-sum-exp as the sum of two float32s) and,
	// with QKV, hook_v [kv_heads, tokens, head_dim], instead of attn.pattern.
	// CheckQK lists what it cannot be combined with.
	QK     bool
	Logits Logits // which logits to return in Output
	// Intervention edits activations during the pass (nil: none); see
	// Intervention. Recorded tensors are the edited ones.
	Intervention *Intervention
	// Internals also records blocks.<l>.attn.hook_attn_scores [heads, query,
	// key] (masked entries at the lowest float32) and blocks.<l>.attn.hook_z
	// [heads, tokens, head_dim], e.g. as patch sources.
	Internals bool
}

// Output is what Forward returns besides the recorded tensors.
type Output struct {
	// Logits are row-major with shape LogitsShape: [vocab] for LogitsLast,
	// [tokens, vocab] for LogitsAll, nil for LogitsNone. For BERT they are the
	// masked-LM head's scores.
	Logits      []float32
	LogitsShape []int
}

// GenerateOptions controls Generate. Zero values mean: greedy decoding
// (DoSample false), no time limit, EOS ids from the config.
type GenerateOptions struct {
	MaxNewTokens int           // number of tokens to generate at most (> 0)
	MaxTime      time.Duration // stop after this long (0: no limit); checked between steps
	DoSample     bool          // sample instead of greedy argmax
	Temperature  float64       // sampling temperature (0 or 1: none)
	TopK         int           // keep the K most probable tokens (0: all)
	TopP         float64       // nucleus sampling mass (0 or 1: all)
	Seed         int64         // seed of the sampler; n tries = n calls with different seeds
	EOS          []int         // stop tokens; nil: config.json's eos_token_id; empty non-nil: never stop
	// Intervention edits activations in the prompt's pass and in every decode
	// step (nil: none); positions are absolute (prompt and generated tokens
	// counted together), so a step at position p applies the edits of p. See
	// Intervention for what a decode step edits.
	Intervention *Intervention
}

// Generation is the result of Generate.
type Generation struct {
	IDs           []int     // prompt followed by the generated tokens
	PromptLen     int       // number of prompt tokens
	NewTokenProbs []float64 // probability of each generated token under the (unmodified) softmax of the logits
	StopReason    string    // "eos", "max_new_tokens" or "max_time"
}

// Model is a loaded checkpoint. Methods may be called from one goroutine at a time.
type Model interface {
	// Config returns the parsed config.json.
	Config() *arch.Config

	// Forward runs one sequence through the model, recording layer by layer.
	// An input longer than the context (config max positions) is an error.
	Forward(ctx context.Context, in Input, rec Recorder, opts ForwardOptions) (*Output, error)

	// ForwardBatch runs right-padded sequences of equal length (AttentionMask
	// marks real tokens) as one batch: one graph per part over [B, T, width]
	// activations. recs[i] (nil: skip) receives sample i's tensors at the
	// padded length, as Forward of the padded input with that mask would
	// (within float32 rounding); the unpadded rows equal those of Forward on
	// the unpadded input. Memory holds one layer of the whole batch.
	ForwardBatch(ctx context.Context, in []Input, recs []Recorder, opts ForwardOptions) ([]*Output, error)

	// Generate continues prompt with a KV cache (decoder models only). When rec
	// is non-nil it receives, after the last step, per layer
	// "blocks.<l>.attn.pattern" [heads, M, M] with M = len(prompt) + steps - 1:
	// rows 0..P-1 are the prompt's self-attention, row P+s-1 is the query of
	// step s (zeros above the diagonal), like transformers' generation
	// attentions assembled into one lower-triangular matrix.
	Generate(ctx context.Context, prompt []int, opts GenerateOptions, rec Recorder) (*Generation, error)

	// CompiledGraphs returns how many computation graphs have been compiled so
	// far (sequence lengths are bucketed, so this stays small).
	CompiledGraphs() int

	// Close releases the weights and compiled graphs.
	Close() error
}

// LoadOptions configures Load.
type LoadOptions struct {
	// Backend is a GoMLX backend config ("go", "xla:cuda", ...); empty means
	// $GOMLX_BACKEND, else the pure-Go backend. The pure-Go backend uses
	// GOMAXPROCS threads (read when the model is loaded).
	Backend string
	// Strict refuses a checkpoint with tensors the architecture does not use
	// (such as more layers than config.json declares) instead of warning.
	Strict bool
	// Warn receives warnings (unused tensors, as transformers reports them);
	// nil writes them to standard error.
	Warn func(msg string)
	// Float64Attention computes every forward pass's attention scores, softmax
	// and pattern·v in float64 (arch.AttentionInputs.Float64), so that tiles
	// recomputed from a qk capture equal a full capture's pattern within 1e-6;
	// false keeps float32, as PyTorch's eager attention.
	Float64Attention bool
}
