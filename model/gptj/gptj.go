// Package gptj defines the GPT-J architecture (GPTJForCausalLM): one
// LayerNorm feeding attention and MLP in parallel (x + attn(ln(x)) +
// mlp(ln(x))), unbiased q/k/v/out projections, rotary embeddings on the first
// rotary_dim dims of each head in adjacent pairs (rotate_every_two), and an LM
// head with a bias (Wang & Komatsuzaki 2021; transformers' modeling_gptj.py).
// CodeGen (package codegen) is GPT-J with a fused qkv projection.
package gptj

import (
	"fmt"
	"math"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/model/arch"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
)

// Arch is GPT-J for one config. QKV, when set, replaces the separate q/k/v
// projections (CodeGen) and AttnParams their parameters.
type Arch struct {
	C          *arch.Config
	AttnParams func(p func(key, suffix string, shape ...int) arch.Param) []arch.Param
	QKV        func(w arch.Weights, h *Node) (q, k, v *Node)
}

// New returns the architecture of c.
func New(c *arch.Config) arch.Architecture { return &Arch{C: c} }

// ParseConfig reads a GPTJConfig (n_embd, n_layer, n_head, n_positions,
// rotary_dim (default the whole head), n_inner (default 4·n_embd),
// layer_norm_epsilon, activation_function gelu_new, untied head).
func ParseConfig(raw checkpoint.RawConfig) (*arch.Config, error) { return Parse(raw, "gptj") }

// Parse reads the config keys GPT-J and CodeGen share.
func Parse(raw checkpoint.RawConfig, modelType string) (*arch.Config, error) {
	c := &arch.Config{
		ModelType: modelType, Raw: raw, NormEps: 1e-5, Activation: "gelu_new", MLPBias: true, RopeTheta: 10000,
		Keys: arch.ConfigKeys{VocabSize: "vocab_size", Hidden: "n_embd", Layers: "n_layer", Heads: "n_head", Intermediate: "n_inner", MaxPositions: "n_positions"},
	}
	f := raw.Fields()
	arch.ReadSizes(f, c)
	f.Float("layer_norm_epsilon", &c.NormEps)
	f.String("activation_function", &c.Activation)
	rot := 0
	f.Int("rotary_dim", &rot)
	arch.ReadCommon(f, c)
	if c.Intermediate == 0 {
		c.Intermediate = 4 * c.Hidden
	}
	c.RotaryFraction = 1
	if c.Heads > 0 && c.Hidden%c.Heads == 0 && rot != 0 {
		hd := c.Hidden / c.Heads
		if rot < 0 || rot > hd || rot%2 != 0 {
			return nil, fmt.Errorf("field rotary_dim: %d is not an even number in [2, %d] (the head width)", rot, hd)
		}
		c.RotaryFraction = float64(rot) / float64(hd)
	}
	return c.Finish(f.Err())
}

func (a *Arch) EmbedParams() []arch.Param {
	return []arch.Param{{Key: "wte", Name: "transformer.wte.weight", Shape: []int{a.C.VocabSize, a.C.Hidden}}}
}

func (a *Arch) LayerParams(l int) []arch.Param {
	d, m := a.C.Hidden, a.C.Intermediate
	p := func(key, suffix string, shape ...int) arch.Param {
		return arch.Param{Key: key, Name: fmt.Sprintf("transformer.h.%d.%s", l, suffix), Shape: shape}
	}
	var attn []arch.Param
	if a.AttnParams != nil {
		attn = a.AttnParams(p)
	} else {
		attn = []arch.Param{p("q_w", "attn.q_proj.weight", d, d), p("k_w", "attn.k_proj.weight", d, d), p("v_w", "attn.v_proj.weight", d, d)}
	}
	return append(attn,
		p("ln1_w", "ln_1.weight", d), p("ln1_b", "ln_1.bias", d),
		p("o_w", "attn.out_proj.weight", d, d),
		p("in_w", "mlp.fc_in.weight", m, d), p("in_b", "mlp.fc_in.bias", m),
		p("out_w", "mlp.fc_out.weight", d, m), p("out_b", "mlp.fc_out.bias", d),
	)
}

func (a *Arch) FinalParams() []arch.Param {
	d := a.C.Hidden
	return []arch.Param{
		{Key: "lnf_w", Name: "transformer.ln_f.weight", Shape: []int{d}},
		{Key: "lnf_b", Name: "transformer.ln_f.bias", Shape: []int{d}},
	}
}

func (a *Arch) HeadParams() []arch.Param {
	return []arch.Param{
		{Key: "head", Name: "lm_head.weight", Shape: []int{a.C.VocabSize, a.C.Hidden}},
		{Key: "head_b", Name: "lm_head.bias", Shape: []int{a.C.VocabSize}},
	}
}

func (a *Arch) Embed(w arch.Weights, ids, _, _ *Node) *Node {
	return Gather(w["wte"], InsertAxes(ids, -1))
}

func (a *Arch) Block(w arch.Weights, x *Node, in arch.AttentionInputs) arch.BlockOutputs {
	h, hd := a.C.Heads, a.C.HeadDim
	hn := arch.FastLayerNorm(x, w["ln1_w"], w["ln1_b"], a.C.NormEps)
	var q, k, v *Node
	if a.QKV != nil {
		q, k, v = a.QKV(w, hn)
	} else {
		q = arch.SplitHeads(arch.Linear(hn, w["q_w"], nil), h, hd)
		k = arch.SplitHeads(arch.Linear(hn, w["k_w"], nil), h, hd)
		v = arch.SplitHeads(arch.Linear(hn, w["v_w"], nil), h, hd)
	}
	q = arch.ApplyRopeInterleaved(q, in.Cos, in.Sin, a.RotaryDim())
	k = arch.ApplyRopeInterleaved(k, in.Cos, in.Sin, a.RotaryDim())
	k = arch.UpdateCache(in.PastK, k, in.Past)
	v = arch.UpdateCache(in.PastV, v, in.Past)
	att, pattern, lse := in.Attend(q, k, v)
	mlp := arch.Linear(arch.LinearAct(hn, w["in_w"], w["in_b"], a.C.Activation), w["out_w"], w["out_b"])
	x = Add(Add(x, arch.Linear(att, w["o_w"], nil)), mlp)
	return arch.BlockOutputs{Out: x, Pattern: pattern, LSE: lse, Q: q, K: k, V: v}
}

func (a *Arch) FinalNorm(w arch.Weights, x *Node) *Node {
	return arch.FastLayerNorm(x, w["lnf_w"], w["lnf_b"], a.C.NormEps)
}

func (a *Arch) Head(w arch.Weights, x *Node) *Node { return arch.Linear(x, w["head"], w["head_b"]) }
func (a *Arch) Causal() bool                       { return true }
func (a *Arch) RotaryDim() int                     { return int(math.Round(float64(a.C.HeadDim) * a.C.RotaryFraction)) }
func (a *Arch) RopeTheta() float64                 { return a.C.RopeTheta }
func (a *Arch) KVHeads() int                       { return a.C.Heads }
func (a *Arch) HeadDim() int                       { return a.C.HeadDim }
