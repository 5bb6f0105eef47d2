package arch

import (
	"encoding/json"
	"fmt"

	"github.com/attnscope/attnscope/checkpoint"
)

// Config describes one model: a Hugging Face config.json normalised across
// families. Each family package (model/gpt2, model/bert, model/llama,
// model/gptneox) fills it from the keys its config files use; Keys keeps
// those key names so that errors name the field as the file spells it.
type Config struct {
	ModelType     string   // "gpt2", "bert", "llama", "mistral", "qwen2", "gpt_neox"
	Architectures []string // e.g. ["GPT2LMHeadModel"]

	VocabSize         int
	Hidden            int // width of the residual stream
	Layers            int
	Heads             int // query heads
	KVHeads           int // key/value heads (= Heads without grouped-query attention)
	HeadDim           int // per-head width (Hidden/Heads unless the file says)
	Intermediate      int // MLP width
	MaxPositions      int // context length
	TypeVocabSize     int // BERT token types
	NormEps           float64
	Activation        string
	TieWordEmbeddings bool

	// RoPE (llama family, gpt_neox): base and the rotated fraction of each head.
	RopeTheta      float64
	RopeType       string
	RotaryFraction float64
	// Rope holds the scaling parameters of rope_type linear, dynamic, yarn,
	// longrope and llama3 (see RopeTables).
	Rope RopeScaling

	AttentionBias       bool // q/k/v/o biases
	MLPBias             bool
	UseParallelResidual bool // gpt_neox

	// HiddenDropout and AttentionDropout are the training-mode dropout rates
	// (BERT's hidden_dropout_prob and attention_probs_dropout_prob).
	HiddenDropout, AttentionDropout float64

	// SlidingWindow is the attention window (Mistral, Qwen2 with
	// use_sliding_window, Phi-3, Gemma 2, GPT-Neo's local layers); 0 means
	// full attention. Query i sees keys j with i−W < j ≤ i.
	SlidingWindow int
	// LayerTypes names each layer's attention, "full_attention" or
	// "sliding_attention" (transformers' layer_types); empty: every layer
	// uses SlidingWindow.
	LayerTypes []string

	BOSTokenID  *int
	EOSTokenIDs []int
	PadTokenID  *int

	Keys ConfigKeys           // the family's key names
	Raw  checkpoint.RawConfig // the file's JSON object
}

// ConfigKeys are the config.json key names of a family's size fields.
type ConfigKeys struct {
	VocabSize, Hidden, Layers, Heads, KVHeads, HeadDim, Intermediate, MaxPositions, TypeVocabSize string
}

// HFKeys are the key names of transformers' PretrainedConfig attribute map,
// used by every family but GPT-2.
var HFKeys = ConfigKeys{
	VocabSize: "vocab_size", Hidden: "hidden_size", Layers: "num_hidden_layers", Heads: "num_attention_heads",
	KVHeads: "num_key_value_heads", HeadDim: "head_dim", Intermediate: "intermediate_size",
	MaxPositions: "max_position_embeddings", TypeVocabSize: "type_vocab_size",
}

// ReadSizes reads the size fields named by c.Keys (keys left empty are not read).
func ReadSizes(f *checkpoint.Fields, c *Config) {
	k := c.Keys
	for _, s := range []struct {
		key string
		dst *int
	}{
		{k.VocabSize, &c.VocabSize}, {k.Hidden, &c.Hidden}, {k.Layers, &c.Layers}, {k.Heads, &c.Heads},
		{k.KVHeads, &c.KVHeads}, {k.HeadDim, &c.HeadDim}, {k.Intermediate, &c.Intermediate},
		{k.MaxPositions, &c.MaxPositions}, {k.TypeVocabSize, &c.TypeVocabSize},
	} {
		if s.key != "" {
			f.Int(s.key, s.dst)
		}
	}
}

// ReadCommon reads the keys every family shares: architectures,
// tie_word_embeddings (over the family's default) and the special token ids.
func ReadCommon(f *checkpoint.Fields, c *Config) {
	f.Strings("architectures", &c.Architectures)
	f.Bool("tie_word_embeddings", &c.TieWordEmbeddings)
	c.BOSTokenID = optionalInt(c.Raw, "bos_token_id")
	c.PadTokenID = optionalInt(c.Raw, "pad_token_id")
	f.IntOrList("eos_token_id", &c.EOSTokenIDs)
}

// optionalInt reads an integer id, ignoring other forms (as transformers does
// for bos/pad ids it cannot use).
func optionalInt(r checkpoint.RawConfig, key string) *int {
	v, ok := r[key]
	if !ok || string(v) == "null" {
		return nil
	}
	var id int
	if json.Unmarshal(v, &id) != nil {
		return nil
	}
	return &id
}

// ReadRope reads the RoPE settings: rope_theta (default 10000), the rotated
// fraction rotary_pct or partial_rotary_factor (default 1), and transformers
// 5's nested rope_parameters (or an older rope_scaling) with the scaling
// type and its parameters (transformers' modeling_rope_utils.py).
func ReadRope(f *checkpoint.Fields, c *Config) {
	c.RopeTheta, c.RotaryFraction = 10000, 1
	f.Float("rope_theta", &c.RopeTheta)
	f.Float("rotary_pct", &c.RotaryFraction)
	f.Float("partial_rotary_factor", &c.RotaryFraction)
	r := &c.Rope
	r.Truncate = true
	f.Int("original_max_position_embeddings", &r.TopOriginalMax) // Phi-3 keeps it at the top level
	for _, key := range []string{"rope_scaling", "rope_parameters"} {
		if !f.Has(key) || f.Err() != nil {
			continue
		}
		p := f.Sub(key)
		r.Field = key
		p.Float("rope_theta", &c.RopeTheta)
		p.Float("partial_rotary_factor", &c.RotaryFraction)
		p.String("type", &c.RopeType)
		p.String("rope_type", &c.RopeType)
		p.Float("factor", &r.Factor)
		p.Int("original_max_position_embeddings", &r.OriginalMax)
		p.Float("low_freq_factor", &r.LowFreqFactor)
		p.Float("high_freq_factor", &r.HighFreqFactor)
		p.Float("attention_factor", &r.AttentionFactor)
		p.Float("beta_fast", &r.BetaFast)
		p.Float("beta_slow", &r.BetaSlow)
		p.Float("mscale", &r.Mscale)
		p.Float("mscale_all_dim", &r.MscaleAllDim)
		p.Bool("truncate", &r.Truncate)
		p.Floats("short_factor", &r.ShortFactor)
		p.Floats("long_factor", &r.LongFactor)
		f.Join(p)
	}
	r.Type = c.RopeType
}

// ReadWindows reads layer_types (when present) and checks it: one entry per
// layer, each "full_attention" or "sliding_attention".
func ReadWindows(f *checkpoint.Fields, c *Config) {
	f.Strings("layer_types", &c.LayerTypes)
}

// Window returns layer l's attention window (0: full attention).
func (c *Config) Window(l int) int {
	if len(c.LayerTypes) > 0 && c.LayerTypes[l] != "sliding_attention" {
		return 0
	}
	return c.SlidingWindow
}

// Finish fills the derived fields (KVHeads, HeadDim) and checks that the
// config can run, naming the fields by c.Keys. readErr is the first error of
// reading the fields, returned as is.
func (c *Config) Finish(readErr error) (*Config, error) {
	if readErr != nil {
		return nil, readErr
	}
	k := c.Keys
	if c.SlidingWindow < 0 {
		return nil, fmt.Errorf("field sliding_window: %d is negative (expected a positive window or null)", c.SlidingWindow)
	}
	if len(c.LayerTypes) > 0 && len(c.LayerTypes) != c.Layers {
		return nil, fmt.Errorf("field layer_types: %d entries for %s %d", len(c.LayerTypes), k.Layers, c.Layers)
	}
	for i, t := range c.LayerTypes {
		if t != "full_attention" && t != "sliding_attention" {
			return nil, fmt.Errorf("field layer_types[%d]: %q is not supported (expected \"full_attention\" or \"sliding_attention\")", i, t)
		}
		if t == "sliding_attention" && c.SlidingWindow == 0 {
			return nil, fmt.Errorf("field layer_types[%d] is \"sliding_attention\" but sliding_window is missing or null", i)
		}
	}
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	for _, f := range []struct {
		key string
		v   int
	}{{k.VocabSize, c.VocabSize}, {k.Hidden, c.Hidden}, {k.Layers, c.Layers}, {k.Heads, c.Heads}} {
		if f.v <= 0 {
			return nil, fmt.Errorf("field %s is missing or not positive (model_type %s)", f.key, c.ModelType)
		}
	}
	for _, f := range []struct {
		key string
		v   int
	}{{k.KVHeads, c.KVHeads}, {k.HeadDim, c.HeadDim}, {k.Intermediate, c.Intermediate}, {k.MaxPositions, c.MaxPositions}, {k.TypeVocabSize, c.TypeVocabSize}} {
		if f.v < 0 {
			return nil, fmt.Errorf("field %s is negative (%d)", f.key, f.v)
		}
	}
	if c.HeadDim == 0 {
		if c.Hidden%c.Heads != 0 {
			return nil, fmt.Errorf("field %s: %d does not divide %s %d", k.Heads, c.Heads, k.Hidden, c.Hidden)
		}
		c.HeadDim = c.Hidden / c.Heads
	}
	if c.Heads%c.KVHeads != 0 {
		return nil, fmt.Errorf("field %s: %d does not divide %s %d", k.KVHeads, c.KVHeads, k.Heads, c.Heads)
	}
	if c.RotaryFraction <= 0 || c.RotaryFraction > 1 {
		return nil, fmt.Errorf("field partial_rotary_factor: %g is not in (0, 1]", c.RotaryFraction)
	}
	if err := c.Rope.check(c); err != nil {
		return nil, err
	}
	return c, nil
}
