// Package gpt2 defines the GPT-2 architecture (GPT2LMHeadModel): learned
// positions, pre-LayerNorm blocks with Conv1D projections, gelu_new MLP, tied
// LM head (Radford et al. 2019; transformers' modeling_gpt2.py).
package gpt2

import (
	"fmt"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/model/arch"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
)

// Arch is GPT-2 for one config.
type Arch struct{ c *arch.Config }

// New returns the GPT-2 architecture of c.
func New(c *arch.Config) arch.Architecture { return &Arch{c: c} }

// ParseConfig reads a GPT2Config (transformers' configuration_gpt2.py names:
// n_embd, n_layer, n_head, n_inner, n_positions, layer_norm_epsilon,
// activation_function; defaults n_inner = 4·n_embd, epsilon 1e-5, gelu_new,
// tied embeddings).
func ParseConfig(raw checkpoint.RawConfig) (*arch.Config, error) {
	c := &arch.Config{
		ModelType: "gpt2", Raw: raw, NormEps: 1e-5, Activation: "gelu_new", TieWordEmbeddings: true,
		AttentionBias: true, MLPBias: true, RotaryFraction: 1,
		Keys: arch.ConfigKeys{VocabSize: "vocab_size", Hidden: "n_embd", Layers: "n_layer", Heads: "n_head", Intermediate: "n_inner", MaxPositions: "n_positions"},
	}
	f := raw.Fields()
	arch.ReadSizes(f, c)
	f.Float("layer_norm_epsilon", &c.NormEps)
	f.String("activation_function", &c.Activation)
	arch.ReadCommon(f, c)
	if c.Intermediate == 0 {
		c.Intermediate = 4 * c.Hidden
	}
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
		p("attn_w", "attn.c_attn.weight", d, 3*d), p("attn_b", "attn.c_attn.bias", 3*d),
		p("proj_w", "attn.c_proj.weight", d, d), p("proj_b", "attn.c_proj.bias", d),
		p("ln2_w", "ln_2.weight", d), p("ln2_b", "ln_2.bias", d),
		p("fc_w", "mlp.c_fc.weight", d, m), p("fc_b", "mlp.c_fc.bias", m),
		p("mproj_w", "mlp.c_proj.weight", m, d), p("mproj_b", "mlp.c_proj.bias", d),
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
	tok := Gather(w["wte"], InsertAxes(ids, -1))
	pos := Gather(w["wpe"], InsertAxes(positions, -1))
	return Add(tok, pos)
}

func (a *Arch) Block(w arch.Weights, x *Node, in arch.AttentionInputs) arch.BlockOutputs {
	d, h, hd := a.c.Hidden, a.c.Heads, a.c.HeadDim
	eps := a.c.NormEps
	hn := arch.FastLayerNorm(x, w["ln1_w"], w["ln1_b"], eps)
	q, k, v := arch.FusedQKV(hn, w["attn_w"], w["attn_b"], d)
	q, k, v = arch.SplitHeads(q, h, hd), arch.SplitHeads(k, h, hd), arch.SplitHeads(v, h, hd)
	k = arch.UpdateCache(in.PastK, k, in.Past)
	v = arch.UpdateCache(in.PastV, v, in.Past)
	att, pattern, lse := in.Attend(q, k, v)
	x = Add(x, arch.Conv1D(att, w["proj_w"], w["proj_b"]))
	hn = arch.FastLayerNorm(x, w["ln2_w"], w["ln2_b"], eps)
	x = Add(x, arch.Conv1D(arch.Conv1DAct(hn, w["fc_w"], w["fc_b"], a.c.Activation), w["mproj_w"], w["mproj_b"]))
	return arch.BlockOutputs{Out: x, Pattern: pattern, LSE: lse, Q: q, K: k, V: v}
}

func (a *Arch) FinalNorm(w arch.Weights, x *Node) *Node {
	return arch.FastLayerNorm(x, w["lnf_w"], w["lnf_b"], a.c.NormEps)
}

func (a *Arch) Head(w arch.Weights, x *Node) *Node { return arch.Linear(x, w["head"], nil) }
func (a *Arch) Causal() bool                       { return true }
func (a *Arch) RotaryDim() int                     { return 0 }
func (a *Arch) RopeTheta() float64                 { return 0 }
func (a *Arch) KVHeads() int                       { return a.c.Heads }
func (a *Arch) HeadDim() int                       { return a.c.HeadDim }
