// Package phi3 defines the Phi-3 architecture (Phi3ForCausalLM): Llama's
// RMSNorm pre-norm blocks with a fused qkv_proj ([q | k | v]) and a fused
// gate_up_proj ([gate | up], SwiGLU), RoPE (longrope for the 128k models,
// partial_rotary_factor for Phi-4-mini) and a sliding window on every layer
// when sliding_window is set (Abdin et al. 2024; transformers'
// modeling_phi3.py).
package phi3

import (
	"fmt"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/model/arch"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
)

// Arch is Phi-3 for one config.
type Arch struct{ c *arch.Config }

// New returns the architecture of c.
func New(c *arch.Config) arch.Architecture { return &Arch{c: c} }

// ParseConfig reads a Phi3Config (rms_norm_eps default 1e-5,
// original_max_position_embeddings default 4096, sliding_window or null).
func ParseConfig(raw checkpoint.RawConfig) (*arch.Config, error) {
	c := &arch.Config{ModelType: "phi3", Raw: raw, NormEps: 1e-5, Activation: "silu", Keys: arch.HFKeys}
	f := raw.Fields()
	arch.ReadSizes(f, c)
	f.Float("rms_norm_eps", &c.NormEps)
	f.String("hidden_act", &c.Activation)
	arch.ReadRope(f, c)
	if c.Rope.TopOriginalMax == 0 {
		c.Rope.TopOriginalMax = 4096
	}
	f.Int("sliding_window", &c.SlidingWindow)
	arch.ReadWindows(f, c)
	arch.ReadCommon(f, c)
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
		p("ln1", "input_layernorm.weight", d),
		p("qkv_w", "self_attn.qkv_proj.weight", qd+2*kvd, d),
		p("o_w", "self_attn.o_proj.weight", d, qd),
		p("ln2", "post_attention_layernorm.weight", d),
		p("gate_up_w", "mlp.gate_up_proj.weight", 2*m, d),
		p("down_w", "mlp.down_proj.weight", d, m),
	}
}

func (a *Arch) FinalParams() []arch.Param {
	return []arch.Param{{Key: "norm", Name: "model.norm.weight", Shape: []int{a.c.Hidden}}}
}

func (a *Arch) HeadParams() []arch.Param {
	name := "lm_head.weight"
	if a.c.TieWordEmbeddings {
		name = "model.embed_tokens.weight"
	}
	return []arch.Param{{Key: "head", Name: name, Shape: []int{a.c.VocabSize, a.c.Hidden}}}
}

func (a *Arch) Embed(w arch.Weights, ids, _, _ *Node) *Node {
	return Gather(w["embed"], InsertAxes(ids, -1))
}

func (a *Arch) Block(w arch.Weights, x *Node, in arch.AttentionInputs) arch.BlockOutputs {
	hd, eps, m := a.c.HeadDim, a.c.NormEps, a.c.Intermediate
	hn := arch.RMSNorm(x, w["ln1"], eps)
	q, k, v := arch.QKVHeads(arch.Linear(hn, w["qkv_w"], nil), a.c.Heads, a.c.KVHeads, hd)
	q = arch.ApplyRope(q, in.Cos, in.Sin, a.RotaryDim())
	k = arch.ApplyRope(k, in.Cos, in.Sin, a.RotaryDim())
	k = arch.UpdateCache(in.PastK, k, in.Past)
	v = arch.UpdateCache(in.PastV, v, in.Past)
	att, pattern, lse := in.Attend(q, k, v)
	x = Add(x, arch.Linear(att, w["o_w"], nil))
	hn = arch.RMSNorm(x, w["ln2"], eps)
	gu := arch.Linear(hn, w["gate_up_w"], nil)
	act := arch.Activation(a.c.Activation)
	mlp := Mul(SliceAxis(gu, 2, AxisRange(m, 2*m)), act(SliceAxis(gu, 2, AxisRange(0, m))))
	x = Add(x, arch.Linear(mlp, w["down_w"], nil))
	return arch.BlockOutputs{Out: x, Pattern: pattern, LSE: lse, Q: q, K: k, V: v}
}

func (a *Arch) FinalNorm(w arch.Weights, x *Node) *Node {
	return arch.RMSNorm(x, w["norm"], a.c.NormEps)
}
func (a *Arch) Head(w arch.Weights, x *Node) *Node { return arch.Linear(x, w["head"], nil) }
func (a *Arch) Causal() bool                       { return true }
func (a *Arch) RotaryDim() int                     { return int(float64(a.c.HeadDim) * a.c.RotaryFraction) }
func (a *Arch) RopeTheta() float64                 { return a.c.RopeTheta }
func (a *Arch) KVHeads() int                       { return a.c.KVHeads }
func (a *Arch) HeadDim() int                       { return a.c.HeadDim }
