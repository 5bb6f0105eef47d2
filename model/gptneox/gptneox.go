// Package gptneox defines the GPT-NeoX architecture (Pythia): LayerNorm,
// fused per-head query_key_value projection, partial rotary embeddings, and
// (by default) the parallel residual x + attn(ln1(x)) + mlp(ln2(x)) (Black et
// al. 2022; transformers' modeling_gpt_neox.py).
package gptneox

import (
	"fmt"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/model/arch"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
)

// Arch is GPT-NeoX for one config.
type Arch struct{ c *arch.Config }

// New returns the architecture of c.
func New(c *arch.Config) arch.Architecture { return &Arch{c: c} }

// ParseConfig reads a GPTNeoXConfig (layer_norm_eps default 1e-5,
// use_parallel_residual default true, rotary_pct, biases on).
func ParseConfig(raw checkpoint.RawConfig) (*arch.Config, error) {
	c := &arch.Config{
		ModelType: "gpt_neox", Raw: raw, NormEps: 1e-5, Activation: "gelu",
		AttentionBias: true, MLPBias: true, UseParallelResidual: true, Keys: arch.HFKeys,
	}
	f := raw.Fields()
	arch.ReadSizes(f, c)
	f.Float("layer_norm_eps", &c.NormEps)
	f.String("hidden_act", &c.Activation)
	f.Bool("use_parallel_residual", &c.UseParallelResidual)
	f.Bool("attention_bias", &c.AttentionBias)
	f.Bool("mlp_bias", &c.MLPBias)
	arch.ReadRope(f, c)
	arch.ReadCommon(f, c)
	return c.Finish(f.Err())
}

func (a *Arch) EmbedParams() []arch.Param {
	return []arch.Param{{Key: "embed", Name: "gpt_neox.embed_in.weight", Shape: []int{a.c.VocabSize, a.c.Hidden}}}
}

func (a *Arch) LayerParams(l int) []arch.Param {
	d, m := a.c.Hidden, a.c.Intermediate
	p := func(key, suffix string, shape ...int) arch.Param {
		return arch.Param{Key: key, Name: fmt.Sprintf("gpt_neox.layers.%d.%s", l, suffix), Shape: shape}
	}
	return []arch.Param{
		p("ln1_w", "input_layernorm.weight", d), p("ln1_b", "input_layernorm.bias", d),
		p("qkv_w", "attention.query_key_value.weight", 3*d, d), p("qkv_b", "attention.query_key_value.bias", 3*d),
		p("o_w", "attention.dense.weight", d, d), p("o_b", "attention.dense.bias", d),
		p("ln2_w", "post_attention_layernorm.weight", d), p("ln2_b", "post_attention_layernorm.bias", d),
		p("up_w", "mlp.dense_h_to_4h.weight", m, d), p("up_b", "mlp.dense_h_to_4h.bias", m),
		p("down_w", "mlp.dense_4h_to_h.weight", d, m), p("down_b", "mlp.dense_4h_to_h.bias", d),
	}
}

func (a *Arch) FinalParams() []arch.Param {
	d := a.c.Hidden
	return []arch.Param{
		{Key: "lnf_w", Name: "gpt_neox.final_layer_norm.weight", Shape: []int{d}},
		{Key: "lnf_b", Name: "gpt_neox.final_layer_norm.bias", Shape: []int{d}},
	}
}

func (a *Arch) HeadParams() []arch.Param {
	name := "embed_out.weight"
	if a.c.TieWordEmbeddings {
		name = "gpt_neox.embed_in.weight"
	}
	return []arch.Param{{Key: "head", Name: name, Shape: []int{a.c.VocabSize, a.c.Hidden}}}
}

func (a *Arch) Embed(w arch.Weights, ids, _, _ *Node) *Node {
	return Gather(w["embed"], InsertAxes(ids, -1))
}

func (a *Arch) Block(w arch.Weights, x *Node, in arch.AttentionInputs) arch.BlockOutputs {
	eps := a.c.NormEps
	h, hd := a.c.Heads, a.c.HeadDim
	b, t := x.Shape().Dimensions[0], x.Shape().Dimensions[1]
	hn := arch.FastLayerNorm(x, w["ln1_w"], w["ln1_b"], eps)
	// query_key_value output is laid out per head: [B, T, heads, 3·head_dim].
	qkv := TransposeAllDims(Reshape(arch.Linear(hn, w["qkv_w"], w["qkv_b"]), b, t, h, 3*hd), 0, 2, 1, 3)
	q := SliceAxis(qkv, 3, AxisRange(0, hd))
	k := SliceAxis(qkv, 3, AxisRange(hd, 2*hd))
	v := SliceAxis(qkv, 3, AxisRange(2*hd, 3*hd))
	q = arch.ApplyRope(q, in.Cos, in.Sin, a.RotaryDim())
	k = arch.ApplyRope(k, in.Cos, in.Sin, a.RotaryDim())
	k = arch.UpdateCache(in.PastK, k, in.Past)
	v = arch.UpdateCache(in.PastV, v, in.Past)
	att, pattern, lse := in.Attend(q, k, v)
	attnOut := arch.Linear(att, w["o_w"], w["o_b"])
	mlp := func(y *Node) *Node {
		return arch.Linear(arch.LinearAct(y, w["up_w"], w["up_b"], a.c.Activation), w["down_w"], w["down_b"])
	}
	if a.c.UseParallelResidual {
		x = Add(Add(x, attnOut), mlp(arch.FastLayerNorm(x, w["ln2_w"], w["ln2_b"], eps)))
	} else {
		x = Add(x, attnOut)
		x = Add(x, mlp(arch.FastLayerNorm(x, w["ln2_w"], w["ln2_b"], eps)))
	}
	return arch.BlockOutputs{Out: x, Pattern: pattern, LSE: lse, Q: q, K: k, V: v}
}

func (a *Arch) FinalNorm(w arch.Weights, x *Node) *Node {
	return arch.FastLayerNorm(x, w["lnf_w"], w["lnf_b"], a.c.NormEps)
}
func (a *Arch) Head(w arch.Weights, x *Node) *Node { return arch.Linear(x, w["head"], nil) }
func (a *Arch) Causal() bool                       { return true }

// RotaryDim is int(head_dim · rotary_pct), as transformers computes rotary_ndims.
func (a *Arch) RotaryDim() int     { return int(float64(a.c.HeadDim) * a.c.RotaryFraction) }
func (a *Arch) RopeTheta() float64 { return a.c.RopeTheta }
func (a *Arch) KVHeads() int       { return a.c.Heads }
func (a *Arch) HeadDim() int       { return a.c.HeadDim }
