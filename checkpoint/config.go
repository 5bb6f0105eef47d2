package checkpoint

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Config is a Hugging Face config.json normalised across the supported families
// (gpt2, bert, llama, mistral, qwen2, gpt_neox): each family's own key names are
// mapped onto these fields. Raw keeps the file's JSON object.
type Config struct {
	ModelType     string   // "gpt2", "bert", "llama", "mistral", "qwen2", "gpt_neox"
	Architectures []string // e.g. ["GPT2LMHeadModel"]

	VocabSize         int
	Hidden            int // width of the residual stream (n_embd, hidden_size)
	Layers            int // n_layer, num_hidden_layers
	Heads             int // query heads
	KVHeads           int // key/value heads (= Heads without grouped-query attention)
	HeadDim           int // head_dim, else Hidden/Heads
	Intermediate      int // MLP width (n_inner, intermediate_size; GPT-2 default 4·Hidden)
	MaxPositions      int // n_positions, max_position_embeddings
	TypeVocabSize     int // BERT token types
	NormEps           float64
	Activation        string // activation_function / hidden_act
	TieWordEmbeddings bool

	// RoPE (llama family, gpt_neox): rope_parameters.rope_theta or rope_theta;
	// RotaryFraction from partial_rotary_factor or rotary_pct (1 when absent).
	RopeTheta      float64
	RopeType       string
	RotaryFraction float64

	AttentionBias       bool // q/k/v/o biases (llama attention_bias; qwen2 always has q/k/v bias)
	MLPBias             bool
	UseParallelResidual bool // gpt_neox

	// SlidingWindow is the attention window of Mistral (sliding_window) and of
	// Qwen2 with use_sliding_window; 0 means full attention.
	SlidingWindow int

	BOSTokenID  *int
	EOSTokenIDs []int
	PadTokenID  *int

	Raw map[string]json.RawMessage
}

// ReadConfig reads dir/config.json.
func ReadConfig(dir string) (*Config, error) {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return c, nil
}

// ModelTypes lists the config.json model_type values whose fields ParseConfig knows.
var ModelTypes = []string{"gpt2", "bert", "llama", "mistral", "qwen2", "gpt_neox"}

// ParseConfig parses config.json bytes and checks the fields the model needs.
func ParseConfig(b []byte) (*Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("expected a JSON object: %w", err)
	}
	c := &Config{Raw: raw, RotaryFraction: 1}
	p := parser{raw: raw}
	p.str("model_type", &c.ModelType)
	if c.ModelType == "" {
		return nil, fmt.Errorf("field model_type is missing")
	}
	if !slices.Contains(ModelTypes, c.ModelType) {
		return nil, fmt.Errorf("field model_type: %q is not supported (expected one of %s)", c.ModelType, strings.Join(ModelTypes, ", "))
	}
	if v, ok := raw["architectures"]; ok {
		_ = json.Unmarshal(v, &c.Architectures)
	}
	p.int("vocab_size", &c.VocabSize)
	switch c.ModelType {
	case "gpt2":
		p.int("n_embd", &c.Hidden)
		p.int("n_layer", &c.Layers)
		p.int("n_head", &c.Heads)
		p.int("n_inner", &c.Intermediate)
		p.int("n_positions", &c.MaxPositions)
		c.NormEps = 1e-5
		p.float("layer_norm_epsilon", &c.NormEps)
		c.Activation = "gelu_new"
		p.str("activation_function", &c.Activation)
		c.TieWordEmbeddings = true
		if c.Intermediate == 0 {
			c.Intermediate = 4 * c.Hidden
		}
		c.AttentionBias, c.MLPBias = true, true
	default:
		p.int("hidden_size", &c.Hidden)
		p.int("num_hidden_layers", &c.Layers)
		p.int("num_attention_heads", &c.Heads)
		p.int("num_key_value_heads", &c.KVHeads)
		p.int("head_dim", &c.HeadDim)
		p.int("intermediate_size", &c.Intermediate)
		p.int("max_position_embeddings", &c.MaxPositions)
		p.int("type_vocab_size", &c.TypeVocabSize)
		p.str("hidden_act", &c.Activation)
		switch c.ModelType {
		case "bert", "gpt_neox":
			c.NormEps = 1e-12
			if c.ModelType == "gpt_neox" {
				c.NormEps = 1e-5
			}
			p.float("layer_norm_eps", &c.NormEps)
		default:
			c.NormEps = 1e-6
			p.float("rms_norm_eps", &c.NormEps)
		}
		c.TieWordEmbeddings = c.ModelType == "bert"
	}
	p.bool("tie_word_embeddings", &c.TieWordEmbeddings)
	switch c.ModelType {
	case "qwen2":
		c.AttentionBias = true
	case "gpt_neox":
		c.AttentionBias, c.MLPBias = true, true
		c.UseParallelResidual = true
		p.bool("use_parallel_residual", &c.UseParallelResidual)
	case "bert":
		c.AttentionBias, c.MLPBias = true, true
	}
	if c.ModelType != "gpt2" && c.ModelType != "bert" {
		p.bool("attention_bias", &c.AttentionBias)
		p.bool("mlp_bias", &c.MLPBias)
		if c.ModelType == "qwen2" {
			c.AttentionBias = true // Qwen2 always has q/k/v biases (o_proj has none)
		}
		// RoPE: transformers 5 nests rope settings in rope_parameters; older files use top-level keys.
		c.RopeTheta = 10000
		p.float("rope_theta", &c.RopeTheta)
		p.float("rotary_pct", &c.RotaryFraction)
		p.float("partial_rotary_factor", &c.RotaryFraction)
		if rp, ok := raw["rope_parameters"]; ok && string(rp) != "null" {
			var sub map[string]json.RawMessage
			if err := json.Unmarshal(rp, &sub); err != nil {
				return nil, fmt.Errorf("field rope_parameters: expected an object: %w", err)
			}
			q := parser{raw: sub, prefix: "rope_parameters."}
			q.float("rope_theta", &c.RopeTheta)
			q.float("partial_rotary_factor", &c.RotaryFraction)
			q.str("rope_type", &c.RopeType)
			if p.err == nil {
				p.err = q.err
			}
		}
		if rs, ok := raw["rope_scaling"]; ok && string(rs) != "null" && p.err == nil {
			var sub map[string]json.RawMessage
			if json.Unmarshal(rs, &sub) == nil {
				q := parser{raw: sub, prefix: "rope_scaling."}
				q.str("rope_type", &c.RopeType)
				q.str("type", &c.RopeType)
			}
		}
		if c.RopeType != "" && c.RopeType != "default" {
			return nil, fmt.Errorf("field rope_parameters.rope_type: %q is not supported (expected \"default\")", c.RopeType)
		}
	}
	if c.ModelType == "mistral" || c.ModelType == "qwen2" {
		use := c.ModelType == "mistral"
		p.bool("use_sliding_window", &use)
		if use {
			p.int("sliding_window", &c.SlidingWindow)
		}
	}
	if v, ok := raw["bos_token_id"]; ok && string(v) != "null" {
		var id int
		if json.Unmarshal(v, &id) == nil {
			c.BOSTokenID = &id
		}
	}
	if v, ok := raw["pad_token_id"]; ok && string(v) != "null" {
		var id int
		if json.Unmarshal(v, &id) == nil {
			c.PadTokenID = &id
		}
	}
	if v, ok := raw["eos_token_id"]; ok && string(v) != "null" {
		var id int
		var ids []int
		if json.Unmarshal(v, &id) == nil {
			c.EOSTokenIDs = []int{id}
		} else if json.Unmarshal(v, &ids) == nil {
			c.EOSTokenIDs = ids
		} else {
			return nil, fmt.Errorf("field eos_token_id: expected an integer or a list of integers, got %s", v)
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"vocab_size", c.VocabSize}, {"hidden size", c.Hidden}, {"layer count", c.Layers}, {"attention head count", c.Heads}} {
		if f.v <= 0 {
			return nil, fmt.Errorf("model_type %s: %s is missing or not positive", c.ModelType, f.name)
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"num_key_value_heads", c.KVHeads}, {"head_dim", c.HeadDim}, {"intermediate size", c.Intermediate}, {"max positions", c.MaxPositions}, {"type_vocab_size", c.TypeVocabSize}} {
		if f.v < 0 {
			return nil, fmt.Errorf("model_type %s: %s is negative (%d)", c.ModelType, f.name, f.v)
		}
	}
	if c.HeadDim == 0 {
		if c.Hidden%c.Heads != 0 {
			return nil, fmt.Errorf("field num_attention_heads: %d does not divide the hidden size %d", c.Heads, c.Hidden)
		}
		c.HeadDim = c.Hidden / c.Heads
	}
	if c.Heads%c.KVHeads != 0 {
		return nil, fmt.Errorf("field num_key_value_heads: %d does not divide num_attention_heads %d", c.KVHeads, c.Heads)
	}
	if c.RotaryFraction <= 0 || c.RotaryFraction > 1 {
		return nil, fmt.Errorf("field partial_rotary_factor: %g is not in (0, 1]", c.RotaryFraction)
	}
	return c, nil
}

type parser struct {
	raw    map[string]json.RawMessage
	prefix string
	err    error
}

func (p *parser) get(key string, dst any, what string) {
	if p.err != nil {
		return
	}
	v, ok := p.raw[key]
	if !ok || string(v) == "null" {
		return
	}
	if err := json.Unmarshal(v, dst); err != nil {
		p.err = fmt.Errorf("field %s%s: expected %s, got %s", p.prefix, key, what, v)
	}
}

func (p *parser) int(key string, dst *int) {
	var f float64
	p.get(key, &f, "an integer")
	if _, ok := p.raw[key]; ok && p.err == nil && string(p.raw[key]) != "null" {
		if f != float64(int(f)) {
			p.err = fmt.Errorf("field %s%s: expected an integer, got %s", p.prefix, key, p.raw[key])
			return
		}
		*dst = int(f)
	}
}
func (p *parser) float(key string, dst *float64) { p.get(key, dst, "a number") }
func (p *parser) str(key string, dst *string)    { p.get(key, dst, "a string") }
func (p *parser) bool(key string, dst *bool)     { p.get(key, dst, "true or false") }
