// Package phi defines the Phi architecture (PhiForCausalLM: phi-1, phi-1.5,
// phi-2): one LayerNorm feeding attention and MLP in parallel (x + attn(ln(x))
// + mlp(ln(x))), biased q/k/v/dense projections, rotate-half RoPE on the first
// partial_rotary_factor of each head, gelu_new MLP (fc1, fc2), a final
// LayerNorm and an LM head with a bias (Li et al. 2023; transformers'
// modeling_phi.py).
package phi

import (
	"fmt"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/model/arch"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
)

// Arch is Phi for one config.
type Arch struct{ c *arch.Config }

// New returns the architecture of c.
func New(c *arch.Config) arch.Architecture { return &Arch{c: c} }

// ParseConfig reads a PhiConfig (layer_norm_eps 1e-5, hidden_act gelu_new,
// partial_rotary_factor default 0.5, untied head); qk_layernorm is refused.
func ParseConfig(raw checkpoint.RawConfig) (*arch.Config, error) {
	c := &arch.Config{ModelType: "phi", Raw: raw, NormEps: 1e-5, Activation: "gelu_new", AttentionBias: true, MLPBias: true, Keys: arch.HFKeys}
	f := raw.Fields()
	arch.ReadSizes(f, c)
	f.Float("layer_norm_eps", &c.NormEps)
	f.String("hidden_act", &c.Activation)
	arch.ReadRope(f, c)
	if !f.Has("partial_rotary_factor") && !f.Sub("rope_parameters").Has("partial_rotary_factor") {
		c.RotaryFraction = 0.5
	}
	qkNorm := false
	f.Bool("qk_layernorm", &qkNorm)
	arch.ReadCommon(f, c)
	if f.Err() == nil && qkNorm {
		return nil, fmt.Errorf("field qk_layernorm: true is not supported (expected false, as in the published Phi models)")
	}
	return c.Finish(f.Err())
}

func (a *Arch) EmbedParams() []arch.Param {
	return []arch.Param{{Key: "embed", Name: "model.embed_tokens.weight", Shape: []int{a.c.VocabSize, a.c.Hidden}}}
}

func (a *Arch) LayerParams(l int) []arch.Param {
	d, m := a.c.Hidden, a.c.Intermediate
	qd, kvd := a.c.Heads*a.c.HeadDim, a.c.KVHeads*a.c.HeadDim
	p := func(key, suffix string, shape ...int) arch.Param {
		return arch.Param{Key: key, Name: fmt.Sprintf("model.layers.%d.%s", l, suffix), Shape: shape}
	}
	return []arch.Param{
		p("ln_w", "input_layernorm.weight", d), p("ln_b", "input_layernorm.bias", d),
		p("q_w", "self_attn.q_proj.weight", qd, d), p("q_b", "self_attn.q_proj.bias", qd),
		p("k_w", "self_attn.k_proj.weight", kvd, d), p("k_b", "self_attn.k_proj.bias", kvd),
		p("v_w", "self_attn.v_proj.weight", kvd, d), p("v_b", "self_attn.v_proj.bias", kvd),
		p("o_w", "self_attn.dense.weight", d, qd), p("o_b", "self_attn.dense.bias", d),
		p("fc1_w", "mlp.fc1.weight", m, d), p("fc1_b", "mlp.fc1.bias", m),
		p("fc2_w", "mlp.fc2.weight", d, m), p("fc2_b", "mlp.fc2.bias", d),
	}
}

func (a *Arch) FinalParams() []arch.Param {
	d := a.c.Hidden
	return []arch.Param{
		{Key: "lnf_w", Name: "model.final_layernorm.weight", Shape: []int{d}},
		{Key: "lnf_b", Name: "model.final_layernorm.bias", Shape: []int{d}},
	}
}

func (a *Arch) HeadParams() []arch.Param {
	name := "lm_head.weight"
	if a.c.TieWordEmbeddings {
		name = "model.embed_tokens.weight"
	}
	return []arch.Param{
		{Key: "head", Name: name, Shape: []int{a.c.VocabSize, a.c.Hidden}},
		{Key: "head_b", Name: "lm_head.bias", Shape: []int{a.c.VocabSize}},
	}
}

func (a *Arch) Embed(w arch.Weights, ids, _, _ *Node) *Node {
	return Gather(w["embed"], InsertAxes(ids, -1))
}

func (a *Arch) Block(w arch.Weights, x *Node, in arch.AttentionInputs) arch.BlockOutputs {
	hd := a.c.HeadDim
	hn := arch.FastLayerNorm(x, w["ln_w"], w["ln_b"], a.c.NormEps)
	q := arch.SplitHeads(arch.Linear(hn, w["q_w"], w["q_b"]), a.c.Heads, hd)
	k := arch.SplitHeads(arch.Linear(hn, w["k_w"], w["k_b"]), a.c.KVHeads, hd)
	v := arch.SplitHeads(arch.Linear(hn, w["v_w"], w["v_b"]), a.c.KVHeads, hd)
	q = arch.ApplyRope(q, in.Cos, in.Sin, a.RotaryDim())
	k = arch.ApplyRope(k, in.Cos, in.Sin, a.RotaryDim())
	k = arch.UpdateCache(in.PastK, k, in.Past)
	v = arch.UpdateCache(in.PastV, v, in.Past)
	att, pattern, lse := in.Attend(q, k, v)
	mlp := arch.Linear(arch.LinearAct(hn, w["fc1_w"], w["fc1_b"], a.c.Activation), w["fc2_w"], w["fc2_b"])
	x = Add(Add(x, arch.Linear(att, w["o_w"], w["o_b"])), mlp)
	return arch.BlockOutputs{Out: x, Pattern: pattern, LSE: lse, Q: q, K: k, V: v}
}

func (a *Arch) FinalNorm(w arch.Weights, x *Node) *Node {
	return arch.FastLayerNorm(x, w["lnf_w"], w["lnf_b"], a.c.NormEps)
}
func (a *Arch) Head(w arch.Weights, x *Node) *Node { return arch.Linear(x, w["head"], w["head_b"]) }
func (a *Arch) Causal() bool                       { return true }
func (a *Arch) RotaryDim() int                     { return int(float64(a.c.HeadDim) * a.c.RotaryFraction) }
func (a *Arch) RopeTheta() float64                 { return a.c.RopeTheta }
func (a *Arch) KVHeads() int                       { return a.c.KVHeads }
func (a *Arch) HeadDim() int                       { return a.c.HeadDim }
