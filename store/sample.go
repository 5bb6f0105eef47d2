package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/tensor"
)

// Sample is the record of one sample, stored in RUN/samples/<id>/sample.json.
//
// Token i of IDs/Tokens/Offsets is query and key position i of the attention. For
// a generation, the attention has len(IDs)-1 positions: the last generated token
// was never fed back to the model, so it has no row (see AttentionInfo).
type Sample struct {
	ID string `json:"id"`
	// Text is the whole text the tokens cover: the prompt followed by the generated
	// continuation, if any.
	Text string `json:"text"`
	// PromptText is the prompt alone (equal to Text for a forward pass).
	PromptText string `json:"prompt_text"`
	// IDs are the token ids (special tokens included); empty when an imported
	// sample came without them.
	IDs []int `json:"ids"`
	// Tokens are the token strings as the tokenizer's vocabulary spells them
	// (byte-level BPE: Ġ for a space); empty when unknown.
	Tokens []string `json:"tokens"`
	// Offsets are each token's [start, end) character (Unicode code point) span in
	// Text; an empty span for special tokens; empty when unknown.
	Offsets [][2]int `json:"offsets"`
	// PromptLen is the number of prompt (input) tokens: len(IDs) for a plain
	// forward pass; the tokens after it were generated.
	PromptLen int `json:"prompt_length"`
	// Generated lists the generated tokens with their probabilities (nil for a
	// forward pass).
	Generated  []GeneratedToken `json:"generated,omitempty"`
	StopReason string           `json:"stop_reason,omitempty"` // "eos", "max_new_tokens" or "max_time"
	Try        int              `json:"try"`                   // index of the try of a sampled generation
	Seed       *int64           `json:"seed,omitempty"`        // sampler seed of this try

	// Source is the input file the sample came from ("" for --text).
	Source string `json:"source,omitempty"`
	// Language is the programming language of Text when known ("python", ...).
	Language string `json:"language,omitempty"`
	// Truncated is set when the input was cut to fit the model's context (capture
	// --truncate); Text is then the part that was kept.
	Truncated *Truncation `json:"truncated,omitempty"`

	Attention *TensorsInfo `json:"attention,omitempty"` // what attention.safetensors holds
	Hidden    *TensorsInfo `json:"hidden,omitempty"`    // what hidden.safetensors holds (nil: not captured)
	QKV       *TensorsInfo `json:"qkv,omitempty"`       // what qkv.safetensors holds (nil: not captured)
	// QK is what qk.safetensors holds (capture --store qk: no attention.safetensors;
	// tiles are recomputed by QKReader).
	QK *TensorsInfo `json:"qk,omitempty"`

	// Seconds is how long the model took for this sample.
	Seconds float64 `json:"seconds,omitempty"`
	// Extra keeps fields of imported metadata that have no place above.
	Extra map[string]any `json:"extra,omitempty"`
}

// Truncation records how an input longer than the model's context was cut.
type Truncation struct {
	Side           string `json:"side"`            // "left": the start was dropped; "right": the end
	OriginalTokens int    `json:"original_tokens"` // tokens of the whole input (special tokens included)
	OriginalChars  int    `json:"original_chars"`  // characters (code points) of the whole input
	KeptChars      int    `json:"kept_chars"`      // characters kept: Text
}

// GeneratedToken is one generated token.
type GeneratedToken struct {
	ID    int     `json:"id"`
	Token string  `json:"token"`
	Prob  float64 `json:"prob"` // probability under the model's (untempered) softmax
}

// TensorsInfo describes the tensors of a sample's safetensors file.
type TensorsInfo struct {
	Layers int `json:"layers"`
	Heads  int `json:"heads,omitempty"` // attention only
	Query  int `json:"query,omitempty"` // attention: query positions
	Key    int `json:"key,omitempty"`   // attention: key positions
	Tokens int `json:"tokens,omitempty"`
	Width  int `json:"width,omitempty"`
	// HeadDim is the per-head width of queries, keys and values (qkv only).
	HeadDim int `json:"head_dim,omitempty"`
	// KVHeads (qk only): key/value heads, stored once (grouped-query attention).
	KVHeads int `json:"kv_heads,omitempty"`
	// Causal (qk only): query i sees keys j ≤ i; Values: hook_v stored too.
	Causal bool `json:"causal,omitempty"`
	Values bool `json:"values,omitempty"`
	// Scale, SoftCap and Windows (qk only) are how the blockwise pass scored
	// keys, applied again by QKReader: s = q·k·Scale (0, as in runs written
	// before it was recorded: 1/√head_dim), then SoftCap·tanh(s/SoftCap) when
	// SoftCap > 0; Windows[l] > 0 hides key j from query i when j ≤ i −
	// Windows[l] (nil: no layer has a window).
	Scale   float64 `json:"scale,omitempty"`
	SoftCap float64 `json:"softcap,omitempty"`
	Windows []int   `json:"windows,omitempty"`
	DType   string  `json:"dtype"` // "F32" or "F16"
}

// WriteSample writes sample.json of s.ID (atomically). Write it last: it marks the
// sample finished.
func (r *Run) WriteSample(s *Sample) error {
	if err := CheckSampleID(s.ID); err != nil {
		return err
	}
	dir := r.SampleDir(s.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write sample %s: %w", s.ID, err)
	}
	// Unknown token information is written as empty lists, not null.
	if s.IDs == nil {
		s.IDs = []int{}
	}
	if s.Tokens == nil {
		s.Tokens = []string{}
	}
	if s.Offsets == nil {
		s.Offsets = [][2]int{}
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("write sample %s: %w", s.ID, err)
	}
	return atomicfile.WriteFile(filepath.Join(dir, SampleFile), append(b, '\n'))
}

// Sample reads sample.json of id.
func (r *Run) Sample(id string) (*Sample, error) {
	if err := CheckSampleID(id); err != nil {
		return nil, err
	}
	path := filepath.Join(r.SampleDir(id), SampleFile)
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("run %s: no finished sample %q", r.dir, id)
		}
		return nil, err
	}
	s := &Sample{}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("read %s: invalid JSON: %w", path, err)
	}
	if s.ID == "" {
		s.ID = id
	}
	return s, nil
}

// AttentionName is the tensor name of layer l's attention.
func AttentionName(l int) string { return "blocks." + strconv.Itoa(l) + ".attn.pattern" }

// ResidName is the tensor name of the residual stream after block l.
func ResidName(l int) string { return "blocks." + strconv.Itoa(l) + ".hook_resid_post" }

// QName, KName and VName are the tensor names of layer l's queries, keys and
// values in qkv.safetensors (TransformerLens hook names).
func QName(l int) string { return "blocks." + strconv.Itoa(l) + ".attn.hook_q" }

// KName is the tensor name of layer l's keys; see QName.
func KName(l int) string { return "blocks." + strconv.Itoa(l) + ".attn.hook_k" }

// VName is the tensor name of layer l's values; see QName.
func VName(l int) string { return "blocks." + strconv.Itoa(l) + ".attn.hook_v" }

// LSEName is the tensor name of layer l's per-row log-sum-exps [heads, tokens]
// (qk.safetensors).
func LSEName(l int) string { return "blocks." + strconv.Itoa(l) + ".attn.lse" }

// LSELoName is the tensor name of the low part of layer l's log-sum-exps: the
// float64 value is lse + lse_lo (float32 alone would cost ~1e-6 relative error
// in recomputed weights when |lse| ~ 20).
func LSELoName(l int) string { return "blocks." + strconv.Itoa(l) + ".attn.lse_lo" }

// Hidden tensor names besides ResidName.
const (
	EmbedName     = "embed"
	FinalNormName = "final_norm"
)

func (r *Run) openTensors(id, file string) (*checkpoint.Safetensors, error) {
	if err := CheckSampleID(id); err != nil {
		return nil, err
	}
	path := filepath.Join(r.SampleDir(id), file)
	st, err := checkpoint.OpenSafetensors(path)
	if errors.Is(err, fs.ErrNotExist) && r.remote != nil {
		st, err = r.remote.openTensors(SamplesDir + "/" + id + "/" + file)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if !r.Finished(id) {
				return nil, fmt.Errorf("run %s: no finished sample %q", r.dir, id)
			}
			return nil, fmt.Errorf("run %s: sample %q has no %s: %w", r.dir, id, file, ErrNotCaptured)
		}
		return nil, err
	}
	return st, nil
}

// attentionLayers counts the blocks.<l>.attn.pattern tensors, checking that they
// are numbered 0..L-1.
func attentionLayers(st *checkpoint.Safetensors) (int, error) {
	n := 0
	for _, name := range st.Names() {
		if strings.HasSuffix(name, ".attn.pattern") {
			n++
		}
	}
	for l := range n {
		if _, ok := st.Info(AttentionName(l)); !ok {
			return 0, fmt.Errorf("read %s: tensor %q missing (layers are numbered 0..%d)", st.Path(), AttentionName(l), n-1)
		}
	}
	return n, nil
}

// NumLayers returns the number of attention layers of sample id.
func (r *Run) NumLayers(id string) (int, error) {
	if s, err := r.Sample(id); err == nil && s.QK != nil {
		return s.QK.Layers, nil
	}
	st, err := r.openTensors(id, AttentionFile)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	return attentionLayers(st)
}

func readLayer(st *checkpoint.Safetensors, l int) (*tensor.Tensor, error) {
	data, shape, err := st.Float32(AttentionName(l))
	if err != nil {
		return nil, err
	}
	if len(shape) != 3 || shape[1] != shape[2] {
		return nil, fmt.Errorf("read %s: tensor %q has shape %v, [heads, query, key] with query = key expected", st.Path(), AttentionName(l), shape)
	}
	return tensor.FromFloat32(shape, data)
}

// AttentionLayer reads layer l of sample id's attention (only that layer),
// [head, query, key], as float64.
//
// For a sample captured with --store qk the layer is recomputed from its queries,
// keys and log-sum-exps when it has at most MaxQKLayerTokens tokens; above, it is
// an error (read row blocks or tiles with OpenQK instead).
func (r *Run) AttentionLayer(id string, l int) (*tensor.Tensor, error) {
	if s, err := r.Sample(id); err == nil && s.QK != nil {
		return r.qkLayer(id, s.QK, l)
	}
	st, err := r.openTensors(id, AttentionFile)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if _, ok := st.Info(AttentionName(l)); !ok {
		n, _ := attentionLayers(st)
		return nil, fmt.Errorf("read %s: no layer %d (the sample has %d layers)", st.Path(), l, n)
	}
	return readLayer(st, l)
}

// Attention reads all layers of sample id's attention, [layer, head, query, key], as
// float64 (one float32 layer at a time besides the result).
func (r *Run) Attention(id string) (*tensor.Tensor, error) {
	st, err := r.openTensors(id, AttentionFile)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	n, err := attentionLayers(st)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("read %s: no blocks.<l>.attn.pattern tensors", st.Path())
	}
	var out *tensor.Tensor
	for l := range n {
		t, err := readLayer(st, l)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = &tensor.Tensor{Shape: append([]int{n}, t.Shape...), Data: make([]float64, 0, n*len(t.Data))}
		} else if !slices.Equal(t.Shape, out.Shape[1:]) {
			return nil, fmt.Errorf("read %s: layer %d has shape %v, layer 0 %v", st.Path(), l, t.Shape, out.Shape[1:])
		}
		out.Data = append(out.Data, t.Data...)
	}
	return out, nil
}

// HiddenNames lists the tensors of sample id's hidden.safetensors in file order
// (embed, blocks.<l>.hook_resid_post..., final_norm); an error wrapping
// ErrNotCaptured when the run has no hidden states.
func (r *Run) HiddenNames(id string) ([]string, error) {
	st, err := r.openTensors(id, HiddenFile)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return st.Names(), nil
}

// Hidden reads one hidden state of sample id ("embed", "blocks.<l>.hook_resid_post"
// or "final_norm"), [tokens, width] as float64; an error wrapping ErrNotCaptured when
// absent.
func (r *Run) Hidden(id, name string) (*tensor.Tensor, error) {
	st, err := r.openTensors(id, HiddenFile)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if _, ok := st.Info(name); !ok {
		return nil, fmt.Errorf("read %s: no tensor %q: %w", st.Path(), name, ErrNotCaptured)
	}
	data, shape, err := st.Float32(name)
	if err != nil {
		return nil, err
	}
	if len(shape) != 2 {
		return nil, fmt.Errorf("read %s: tensor %q has shape %v, [tokens, width] expected", st.Path(), name, shape)
	}
	return tensor.FromFloat32(shape, data)
}

// QKV reads layer l's queries, keys and values of sample id, each [heads, tokens,
// head_dim] (keys and values repeated per query head for grouped-query attention;
// queries and keys after RoPE where the family applies it). Recomputing the pattern:
// softmax(q·kᵀ/√head_dim + mask) over the key axis. An error wrapping ErrNotCaptured
// when the run was captured without them.
func (r *Run) QKV(id string, l int) (q, k, v *tensor.Tensor, err error) {
	st, err := r.openTensors(id, QKVFile)
	if err != nil {
		return nil, nil, nil, err
	}
	defer st.Close()
	if _, ok := st.Info(QName(l)); !ok {
		return nil, nil, nil, fmt.Errorf("read %s: no layer %d: %w", st.Path(), l, ErrNotCaptured)
	}
	var out [3]*tensor.Tensor
	for i, name := range []string{QName(l), KName(l), VName(l)} {
		data, shape, err := st.Float32(name)
		if err != nil {
			return nil, nil, nil, err
		}
		if len(shape) != 3 {
			return nil, nil, nil, fmt.Errorf("read %s: tensor %q has shape %v, [heads, tokens, head_dim] expected", st.Path(), name, shape)
		}
		if i > 0 && !slices.Equal(shape, out[0].Shape) {
			return nil, nil, nil, fmt.Errorf("read %s: tensor %q has shape %v, hook_q %v", st.Path(), name, shape, out[0].Shape)
		}
		if out[i], err = tensor.FromFloat32(shape, data); err != nil {
			return nil, nil, nil, fmt.Errorf("read %s: tensor %q: %w", st.Path(), name, err)
		}
	}
	return out[0], out[1], out[2], nil
}

// CheckAttention validates attention weights: every value finite and in [0, 1+tol].
// what names the tensor in the error ("layer 3").
func CheckAttention(what string, data []float32) error {
	for i, v := range data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%s: value %d is %v, finite attention weights expected", what, i, v)
		}
		if v < 0 {
			return fmt.Errorf("%s: value %d is %g, non-negative attention weights expected", what, i, v)
		}
	}
	return nil
}
