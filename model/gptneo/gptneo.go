// Package gptneo defines the GPT-Neo architecture (GPTNeoForCausalLM):
// GPT-2-like pre-LayerNorm blocks with separate unbiased q/k/v projections,
// attention without the 1/√head_dim scaling, and layers alternating global and
// local (sliding-window) attention (Black et al. 2021; transformers'
// modeling_gpt_neo.py).
package gptneo

import (
	"encoding/json"
	"fmt"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/model/arch"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
)

// Arch is GPT-Neo for one config.
type Arch struct{ c *arch.Config }

// New returns the architecture of c.
func New(c *arch.Config) arch.Architecture { return &Arch{c: c} }

// ParseConfig reads a GPTNeoConfig: hidden_size, num_layers, num_heads,
// intermediate_size (default 4·hidden), window_size (default 256),
// attention_types ([[["global", "local"], 12]] expands to 24 layers
// alternating), layer_norm_epsilon, activation_function (gelu_new), tied head.
func ParseConfig(raw checkpoint.RawConfig) (*arch.Config, error) {
	c := &arch.Config{
		ModelType: "gpt_neo", Raw: raw, NormEps: 1e-5, Activation: "gelu_new", TieWordEmbeddings: true,
		AttentionBias: false, MLPBias: true, RotaryFraction: 1, SlidingWindow: 256,
		Keys: arch.ConfigKeys{VocabSize: "vocab_size", Hidden: "hidden_size", Layers: "num_layers", Heads: "num_heads", Intermediate: "intermediate_size", MaxPositions: "max_position_embeddings"},
	}
	f := raw.Fields()
	arch.ReadSizes(f, c)
	f.Float("layer_norm_epsilon", &c.NormEps)
	f.String("activation_function", &c.Activation)
	f.Int("window_size", &c.SlidingWindow)
	arch.ReadCommon(f, c)
	if c.Intermediate == 0 {
		c.Intermediate = 4 * c.Hidden
	}
	if f.Err() != nil || c.Layers <= 0 {
		return c.Finish(f.Err())
	}
	types, err := layerTypes(raw, c.Layers)
	if err != nil {
		return nil, err
	}
	c.LayerTypes = types
	return c.Finish(f.Err())
}

func (a *Arch) EmbedParams() []arch.Param {
	d := a.c.Hidden
	return []arch.Param{
		{Key: "wte", Name: "transformer.wte.weight", Shape: []int{a.c.VocabSize, d}},
		{Key: "wpe", Name: "transformer.wpe.weight", Shape: []int{a.c.MaxPositions, d}},
	}
}

func (a *Arch) LayerParams(l int) []arch.Param {
	d, m := a.c.Hidden, a.c.Intermediate
	p := func(key, suffix string, shape ...int) arch.Param {
		return arch.Param{Key: key, Name: fmt.Sprintf("transformer.h.%d.%s", l, suffix), Shape: shape}
	}
	return []arch.Param{
		p("ln1_w", "ln_1.weight", d), p("ln1_b", "ln_1.bias", d),
		p("q_w", "attn.attention.q_proj.weight", d, d),
		p("k_w", "attn.attention.k_proj.weight", d, d),
		p("v_w", "attn.attention.v_proj.weight", d, d),
		p("o_w", "attn.attention.out_proj.weight", d, d), p("o_b", "attn.attention.out_proj.bias", d),
		p("ln2_w", "ln_2.weight", d), p("ln2_b", "ln_2.bias", d),
		p("fc_w", "mlp.c_fc.weight", m, d), p("fc_b", "mlp.c_fc.bias", m),
		p("proj_w", "mlp.c_proj.weight", d, m), p("proj_b", "mlp.c_proj.bias", d),
	}
}

func (a *Arch) FinalParams() []arch.Param {
	d := a.c.Hidden
	return []arch.Param{
		{Key: "lnf_w", Name: "transformer.ln_f.weight", Shape: []int{d}},
		{Key: "lnf_b", Name: "transformer.ln_f.bias", Shape: []int{d}},
	}
}

func (a *Arch) HeadParams() []arch.Param {
	name := "transformer.wte.weight"
	if !a.c.TieWordEmbeddings {
		name = "lm_head.weight"
	}
	return []arch.Param{{Key: "head", Name: name, Shape: []int{a.c.VocabSize, a.c.Hidden}}}
}

func (a *Arch) Embed(w arch.Weights, ids, _, positions *Node) *Node {
	return Add(Gather(w["wte"], InsertAxes(ids, -1)), Gather(w["wpe"], InsertAxes(positions, -1)))
}

// Block is one GPT-Neo layer; local layers differ only by their mask (the
// caller's sliding-window mask for Config.Window(l) > 0).
func (a *Arch) Block(w arch.Weights, x *Node, in arch.AttentionInputs) arch.BlockOutputs {
	h, hd, eps := a.c.Heads, a.c.HeadDim, a.c.NormEps
	hn := arch.FastLayerNorm(x, w["ln1_w"], w["ln1_b"], eps)
	q := arch.SplitHeads(arch.Linear(hn, w["q_w"], nil), h, hd)
	k := arch.SplitHeads(arch.Linear(hn, w["k_w"], nil), h, hd)
	v := arch.SplitHeads(arch.Linear(hn, w["v_w"], nil), h, hd)
	k = arch.UpdateCache(in.PastK, k, in.Past)
	v = arch.UpdateCache(in.PastV, v, in.Past)
	att, pattern, lse := in.AttendWith(q, k, v, a.AttentionOptions())
	x = Add(x, arch.Linear(att, w["o_w"], w["o_b"]))
	hn = arch.FastLayerNorm(x, w["ln2_w"], w["ln2_b"], eps)
	x = Add(x, arch.Linear(arch.LinearAct(hn, w["fc_w"], w["fc_b"], a.c.Activation), w["proj_w"], w["proj_b"]))
	return arch.BlockOutputs{Out: x, Pattern: pattern, LSE: lse, Q: q, K: k, V: v}
}

// AttentionOptions: GPT-Neo does not scale its scores (GPTNeoSelfAttention
// computes q·kᵀ without dividing by √head_dim).
func (a *Arch) AttentionOptions() arch.AttentionOptions { return arch.AttentionOptions{Scale: 1} }

func (a *Arch) FinalNorm(w arch.Weights, x *Node) *Node {
	return arch.FastLayerNorm(x, w["lnf_w"], w["lnf_b"], a.c.NormEps)
}

func (a *Arch) Head(w arch.Weights, x *Node) *Node { return arch.Linear(x, w["head"], nil) }
func (a *Arch) Causal() bool                       { return true }
func (a *Arch) RotaryDim() int                     { return 0 }
func (a *Arch) RopeTheta() float64                 { return 0 }
func (a *Arch) KVHeads() int                       { return a.c.Heads }
func (a *Arch) HeadDim() int                       { return a.c.HeadDim }

// layerTypes expands attention_types, a list of [kinds, repeat] pairs such as
// [[["global", "local"], 12]], into one "full_attention" or
// "sliding_attention" per layer (GPTNeoConfig.expand_attention_types_params);
// absent, layers alternate global and local from layer 0.
func layerTypes(raw checkpoint.RawConfig, layers int) ([]string, error) {
	var out []string
	v, ok := raw["attention_types"]
	if !ok || string(v) == "null" {
		for i := range max(layers, 0) {
			out = append(out, map[bool]string{true: "full_attention", false: "sliding_attention"}[i%2 == 0])
		}
		return out, nil
	}
	var groups [][2]json.RawMessage
	bad := fmt.Errorf("field attention_types: expected a list of [[kinds...], repeat] pairs, got %s", v)
	if json.Unmarshal(v, &groups) != nil {
		return nil, bad
	}
	for _, g := range groups {
		var kinds []string
		var n int
		if json.Unmarshal(g[0], &kinds) != nil || json.Unmarshal(g[1], &n) != nil || n < 0 {
			return nil, bad
		}
		for range n {
			for _, k := range kinds {
				switch k {
				case "global":
					out = append(out, "full_attention")
				case "local":
					out = append(out, "sliding_attention")
				default:
					return nil, fmt.Errorf("field attention_types: kind %q is not supported (expected \"global\" or \"local\")", k)
				}
			}
		}
	}
	if len(out) != layers {
		return nil, fmt.Errorf("field attention_types: describes %d layers, num_layers is %d", len(out), layers)
	}
	return out, nil
}
