// Package llama defines the Llama architecture, which also covers Mistral and
// Qwen2: RMSNorm pre-norm blocks, grouped-query attention with rotary position
// embeddings, optional q/k/v (and o) biases, SwiGLU MLP (Touvron et al. 2023;
// transformers' modeling_llama.py / modeling_qwen2.py).
package llama

import (
	"fmt"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/model/arch"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
)

// Arch is Llama/Mistral/Qwen2 for one config.
type Arch struct{ c *arch.Config }

// New returns the architecture of c.
func New(c *arch.Config) arch.Architecture { return &Arch{c: c} }

// ParseConfig reads a LlamaConfig, MistralConfig or Qwen2Config
// (rms_norm_eps default 1e-6, attention_bias and mlp_bias default false;
// Qwen2 always has q/k/v biases; RoPE; Mistral's sliding_window, Qwen2's
// only with use_sliding_window).
func ParseConfig(raw checkpoint.RawConfig) (*arch.Config, error) {
	mt, err := raw.ModelType()
	if err != nil {
		return nil, err
	}
	c := &arch.Config{ModelType: mt, Raw: raw, NormEps: 1e-6, Activation: "silu", Keys: arch.HFKeys}
	f := raw.Fields()
	arch.ReadSizes(f, c)
	f.Float("rms_norm_eps", &c.NormEps)
	f.String("hidden_act", &c.Activation)
	f.Bool("attention_bias", &c.AttentionBias)
	f.Bool("mlp_bias", &c.MLPBias)
	if mt == "qwen2" {
		c.AttentionBias = true // Qwen2 always has q/k/v biases (o_proj has none)
	}
	arch.ReadRope(f, c)
	switch mt {
	case "mistral": // MistralConfig: sliding_window defaults to 4096, null turns it off
		c.SlidingWindow = 4096
		if f.Has("sliding_window") || !hasKey(raw, "sliding_window") {
			f.Int("sliding_window", &c.SlidingWindow)
		} else {
			c.SlidingWindow = 0
		}
	case "qwen2": // Qwen2Config: the window applies from layer max_window_layers on, with use_sliding_window
		use, from := false, 28
		f.Bool("use_sliding_window", &use)
		f.Int("max_window_layers", &from)
		if use {
			f.Int("sliding_window", &c.SlidingWindow)
		}
		if c.SlidingWindow > 0 && !f.Has("layer_types") {
			for i := range c.Layers {
				c.LayerTypes = append(c.LayerTypes, map[bool]string{true: "sliding_attention", false: "full_attention"}[i >= from])
			}
		}
	}
	arch.ReadWindows(f, c)
	arch.ReadCommon(f, c)
	return c.Finish(f.Err())
}

// hasKey reports whether the file has key, even as null.
func hasKey(raw checkpoint.RawConfig, key string) bool { _, ok := raw[key]; return ok }

func (a *Arch) EmbedParams() []arch.Param {
	return []arch.Param{{Key: "embed", Name: "model.embed_tokens.weight", Shape: []int{a.c.VocabSize, a.c.Hidden}}}
}

// qkvBias: Qwen2 has q/k/v biases and no o bias; Llama's attention_bias adds all four.
func (a *Arch) qkvBias() bool { return a.c.AttentionBias }
func (a *Arch) oBias() bool   { return a.c.AttentionBias && a.c.ModelType != "qwen2" }

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
	if a.qkvBias() {
		ps = append(ps, p("q_b", "self_attn.q_proj.bias", qd), p("k_b", "self_attn.k_proj.bias", kvd), p("v_b", "self_attn.v_proj.bias", kvd))
	}
	if a.oBias() {
		ps = append(ps, p("o_b", "self_attn.o_proj.bias", d))
	}
	if a.c.MLPBias {
		ps = append(ps, p("gate_b", "mlp.gate_proj.bias", m), p("up_b", "mlp.up_proj.bias", m), p("down_b", "mlp.down_proj.bias", d))
	}
	return ps
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
	eps := a.c.NormEps
	hd := a.c.HeadDim
	hn := arch.RMSNorm(x, w["ln1"], eps)
	q := arch.SplitHeads(arch.Linear(hn, w["q_w"], w["q_b"]), a.c.Heads, hd)
	k := arch.SplitHeads(arch.Linear(hn, w["k_w"], w["k_b"]), a.c.KVHeads, hd)
	v := arch.SplitHeads(arch.Linear(hn, w["v_w"], w["v_b"]), a.c.KVHeads, hd)
	q = arch.ApplyRope(q, in.Cos, in.Sin, a.RotaryDim())
	k = arch.ApplyRope(k, in.Cos, in.Sin, a.RotaryDim())
	k = arch.UpdateCache(in.PastK, k, in.Past)
	v = arch.UpdateCache(in.PastV, v, in.Past)
	att, pattern, lse := in.Attend(q, k, v)
	x = Add(x, arch.Linear(att, w["o_w"], w["o_b"]))
	hn = arch.RMSNorm(x, w["ln2"], eps)
	act := arch.Activation(a.c.Activation)
	mlp := Mul(act(arch.Linear(hn, w["gate_w"], w["gate_b"])), arch.Linear(hn, w["up_w"], w["up_b"]))
	x = Add(x, arch.Linear(mlp, w["down_w"], w["down_b"]))
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
