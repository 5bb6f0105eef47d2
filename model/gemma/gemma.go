// Package gemma defines Gemma and Gemma 2 (GemmaForCausalLM,
// Gemma2ForCausalLM): embeddings scaled by √hidden, RMSNorm with weight
// (1 + w), GeGLU MLP (gelu_pytorch_tanh), grouped-query attention with RoPE
// and a tied head; Gemma 2 adds sandwich norms (post-attention and
// pre/post-feed-forward), attention scaled by query_pre_attn_scalar^(−1/2),
// tanh soft-capping of attention scores and final logits, and layers
// alternating sliding-window and global attention (Gemma Team 2024a, 2024b;
// transformers' modeling_gemma.py, modeling_gemma2.py).
package gemma

import (
	"fmt"
	"math"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/model/arch"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
)

// Arch is Gemma or Gemma 2 for one config.
type Arch struct {
	c                        *arch.Config
	v2                       bool
	scale, attnCap, logitCap float64
}

// New returns the architecture of c.
func New(c *arch.Config) arch.Architecture {
	a := &Arch{c: c, v2: c.ModelType == "gemma2", scale: 1 / math.Sqrt(float64(c.HeadDim))}
	if a.v2 {
		f := c.Raw.Fields()
		q := float64(c.HeadDim)
		f.Float("query_pre_attn_scalar", &q)
		f.Float("attn_logit_softcapping", &a.attnCap)
		f.Float("final_logit_softcapping", &a.logitCap)
		a.scale = 1 / math.Sqrt(q)
	}
	return a
}

// ParseConfig reads a GemmaConfig or Gemma2Config (rms_norm_eps 1e-6,
// hidden_activation gelu_pytorch_tanh, tied head; Gemma 2: sliding_window
// on even layers unless layer_types says otherwise, query_pre_attn_scalar,
// attn_logit_softcapping and final_logit_softcapping, read by New).
func ParseConfig(raw checkpoint.RawConfig) (*arch.Config, error) {
	mt, err := raw.ModelType()
	if err != nil {
		return nil, err
	}
	c := &arch.Config{ModelType: mt, Raw: raw, NormEps: 1e-6, Activation: "gelu_pytorch_tanh", TieWordEmbeddings: true, Keys: arch.HFKeys}
	f := raw.Fields()
	arch.ReadSizes(f, c)
	f.Float("rms_norm_eps", &c.NormEps)
	f.String("hidden_activation", &c.Activation)
	f.Bool("attention_bias", &c.AttentionBias)
	arch.ReadRope(f, c)
	var q, capA, capL float64
	f.Float("query_pre_attn_scalar", &q)
	f.Float("attn_logit_softcapping", &capA)
	f.Float("final_logit_softcapping", &capL)
	if mt == "gemma2" {
		c.SlidingWindow = 4096
		if _, ok := raw["sliding_window"]; ok {
			c.SlidingWindow = 0
			f.Int("sliding_window", &c.SlidingWindow)
		}
		arch.ReadWindows(f, c)
		if len(c.LayerTypes) == 0 && c.SlidingWindow > 0 {
			for i := range max(c.Layers, 0) {
				c.LayerTypes = append(c.LayerTypes, map[bool]string{true: "sliding_attention", false: "full_attention"}[(i+1)%2 != 0])
			}
		}
	}
	arch.ReadCommon(f, c)
	if f.Err() == nil && c.AttentionBias {
		return nil, fmt.Errorf("field attention_bias: true is not supported for %s (expected false)", mt)
	}
	if f.Err() == nil && (q < 0 || capA < 0 || capL < 0) {
		return nil, fmt.Errorf("fields query_pre_attn_scalar, attn_logit_softcapping and final_logit_softcapping must not be negative")
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
	ps := []arch.Param{
		p("ln1", "input_layernorm.weight", d),
		p("q_w", "self_attn.q_proj.weight", qd, d),
		p("k_w", "self_attn.k_proj.weight", kvd, d),
		p("v_w", "self_attn.v_proj.weight", kvd, d),
		p("o_w", "self_attn.o_proj.weight", d, qd),
		p("ln2", "post_attention_layernorm.weight", d),
		p("gate_w", "mlp.gate_proj.weight", m, d),
		p("up_w", "mlp.up_proj.weight", m, d),
		p("down_w", "mlp.down_proj.weight", d, m),
	}
	if a.v2 {
		ps = append(ps, p("pre_ff", "pre_feedforward_layernorm.weight", d), p("post_ff", "post_feedforward_layernorm.weight", d))
	}
	return ps
}

func (a *Arch) FinalParams() []arch.Param {
	return []arch.Param{{Key: "norm", Name: "model.norm.weight", Shape: []int{a.c.Hidden}}}
}

func (a *Arch) HeadParams() []arch.Param {
	name := "model.embed_tokens.weight"
	if !a.c.TieWordEmbeddings {
		name = "lm_head.weight"
	}
	return []arch.Param{{Key: "head", Name: name, Shape: []int{a.c.VocabSize, a.c.Hidden}}}
}

// Embed scales by √hidden rounded to float32, as Gemma's normalizer tensor.
func (a *Arch) Embed(w arch.Weights, ids, _, _ *Node) *Node {
	return MulScalar(Gather(w["embed"], InsertAxes(ids, -1)), float64(float32(math.Sqrt(float64(a.c.Hidden)))))
}

// norm is GemmaRMSNorm: x·rsqrt(mean(x²)+eps)·(1+w).
func (a *Arch) norm(x, w *Node) *Node { return arch.RMSNorm(x, OnePlus(w), a.c.NormEps) }

func (a *Arch) Block(w arch.Weights, x *Node, in arch.AttentionInputs) arch.BlockOutputs {
	hd := a.c.HeadDim
	hn := a.norm(x, w["ln1"])
	q := arch.SplitHeads(arch.Linear(hn, w["q_w"], nil), a.c.Heads, hd)
	k := arch.SplitHeads(arch.Linear(hn, w["k_w"], nil), a.c.KVHeads, hd)
	v := arch.SplitHeads(arch.Linear(hn, w["v_w"], nil), a.c.KVHeads, hd)
	q = arch.ApplyRope(q, in.Cos, in.Sin, a.RotaryDim())
	k = arch.ApplyRope(k, in.Cos, in.Sin, a.RotaryDim())
	k = arch.UpdateCache(in.PastK, k, in.Past)
	v = arch.UpdateCache(in.PastV, v, in.Past)
	att, pattern, lse := in.AttendWith(q, k, v, a.AttentionOptions())
	o := arch.Linear(att, w["o_w"], nil)
	mlp := func(h *Node) *Node {
		return arch.Linear(Mul(arch.LinearAct(h, w["gate_w"], nil, a.c.Activation), arch.Linear(h, w["up_w"], nil)), w["down_w"], nil)
	}
	if !a.v2 {
		x = Add(x, o)
		x = Add(x, mlp(a.norm(x, w["ln2"])))
	} else {
		x = Add(x, a.norm(o, w["ln2"]))
		x = Add(x, a.norm(mlp(a.norm(x, w["pre_ff"])), w["post_ff"]))
	}
	return arch.BlockOutputs{Out: x, Pattern: pattern, LSE: lse, Q: q, K: k, V: v}
}

// AttentionOptions: Gemma 2 scales scores by query_pre_attn_scalar^(−1/2) and
// soft-caps them by attn_logit_softcapping; Gemma 1's are the default ones.
func (a *Arch) AttentionOptions() arch.AttentionOptions {
	return arch.AttentionOptions{Scale: a.scale, SoftCap: a.attnCap}
}

func (a *Arch) FinalNorm(w arch.Weights, x *Node) *Node { return a.norm(x, w["norm"]) }

// Head is the tied projection, soft-capped by final_logit_softcapping (Gemma 2).
func (a *Arch) Head(w arch.Weights, x *Node) *Node {
	y := arch.Linear(x, w["head"], nil)
	if a.logitCap > 0 {
		y = arch.SoftCap(y, a.logitCap)
	}
	return y
}
func (a *Arch) Causal() bool       { return true }
func (a *Arch) RotaryDim() int     { return int(float64(a.c.HeadDim) * a.c.RotaryFraction) }
func (a *Arch) RopeTheta() float64 { return a.c.RopeTheta }
func (a *Arch) KVHeads() int       { return a.c.KVHeads }
func (a *Arch) HeadDim() int       { return a.c.HeadDim }
