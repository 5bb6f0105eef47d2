package train

import (
	"fmt"
	"math"

	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL

	"github.com/attnscope/attnscope/model/arch"
)

// llamaParams lists a Llama decoder's weights as LlamaForCausalLM names them
// (torch Linear weights are [out, in]).
func (c ModelConfig) llamaParams() []ParamSpec {
	d, hd := c.NEmbd, c.NEmbd/c.NHead
	ps := []ParamSpec{{"model.embed_tokens.weight", []int{c.VocabSize, d}}}
	for l := 0; l < c.NLayer; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		ps = append(ps,
			ParamSpec{p + "input_layernorm.weight", []int{d}},
			ParamSpec{p + "self_attn.q_proj.weight", []int{c.NHead * hd, d}},
			ParamSpec{p + "self_attn.k_proj.weight", []int{c.kvHeads() * hd, d}},
			ParamSpec{p + "self_attn.v_proj.weight", []int{c.kvHeads() * hd, d}},
			ParamSpec{p + "self_attn.o_proj.weight", []int{d, c.NHead * hd}},
			ParamSpec{p + "post_attention_layernorm.weight", []int{d}},
			ParamSpec{p + "mlp.gate_proj.weight", []int{c.inner(), d}},
			ParamSpec{p + "mlp.up_proj.weight", []int{c.inner(), d}},
			ParamSpec{p + "mlp.down_proj.weight", []int{d, c.inner()}},
		)
	}
	return append(ps, ParamSpec{"model.norm.weight", []int{d}}, ParamSpec{"lm_head.weight", []int{c.VocabSize, d}})
}

const llamaNormEps = 1e-5

// rmsNorm is x/√(mean(x²)+ε)·w (Zhang & Sennrich 2019; LlamaRMSNorm).
func rmsNorm(x, w *Node) *Node {
	v := ReduceAndKeep(Square(x), ReduceMean, -1)
	return Mul(Div(x, Sqrt(AddScalar(v, llamaNormEps))), along(w, x))
}

// linear is x·Wᵀ with a torch Linear weight W [out, in].
func linear(x, w *Node) *Node { return Einsum("btd,od->bto", x, w) }

// rope rotates x [B, T, heads, hd] with the rotate-half convention of Hugging
// Face Llama: x·cos + rotate_half(x)·sin (Su et al. 2021), cos/sin [T, hd].
func rope(x, cos, sin *Node) *Node {
	d := x.Shape().Dimensions
	hd := d[3]
	x1 := SliceAxis(x, 3, AxisRange(0, hd/2))
	x2 := SliceAxis(x, 3, AxisRange(hd/2, hd))
	rot := Concatenate([]*Node{Neg(x2), x1}, 3)
	c := BroadcastToDims(InsertAxes(cos, 0, 1), d...)
	s := BroadcastToDims(InsertAxes(sin, 0, 1), d...)
	return Add(Mul(x, c), Mul(rot, s))
}

// llamaForward builds a Llama decoder over ids [B, T]: logits [B, T, V] and,
// when wantAttn, each layer's pattern [B, H, T, T]. Query head h uses key/value
// head h / (H/KV), as transformers' repeat_kv.
func (c ModelConfig) llamaForward(params []*Node, ids *Node, wantAttn bool) (logits *Node, patterns []*Node) {
	dims := ids.Shape().Dimensions
	b, t := dims[0], dims[1]
	h, kv := c.NHead, c.kvHeads()
	hd := c.NEmbd / h
	grp := h / kv
	g := ids.Graph()
	positions := make([]int, t)
	for i := range positions {
		positions[i] = i
	}
	cosv, sinv := arch.RopeTables(positions, hd, c.theta()) // the runtime's tables, bit for bit
	cos := Reshape(Const(g, cosv), t, hd)
	sin := Reshape(Const(g, sinv), t, hd)
	x := Gather(params[0], InsertAxes(ids, -1)) // [B, T, D]
	causal := LowerTriangular(g, t)
	mask := BroadcastToDims(InsertAxes(causal, 0, 0, 0), b, kv, grp, t, t)
	low := BroadcastToDims(Scalar(g, x.DType(), -1e9), b, kv, grp, t, t)
	for l := 0; l < c.NLayer; l++ {
		w := params[1+9*l : 1+9*(l+1)]
		a := rmsNorm(x, w[0])
		q := rope(Reshape(linear(a, w[1]), b, t, h, hd), cos, sin)
		k := rope(Reshape(linear(a, w[2]), b, t, kv, hd), cos, sin)
		v := Reshape(linear(a, w[3]), b, t, kv, hd)
		qg := Reshape(q, b, t, kv, grp, hd)
		scores := MulScalar(Einsum("bqkgd,bskd->bkgqs", qg, k), 1/math.Sqrt(float64(hd)))
		p := Softmax(Where(mask, scores, low), -1) // [B, KV, G, T, T]
		if wantAttn {
			patterns = append(patterns, Reshape(p, b, h, t, t))
		}
		o := Reshape(Einsum("bkgqs,bskd->bqkgd", p, v), b, t, h*hd)
		x = Add(x, linear(o, w[4]))
		m := rmsNorm(x, w[5])
		gate := linear(m, w[6])
		m = Mul(Mul(gate, Sigmoid(gate)), linear(m, w[7]))
		x = Add(x, linear(m, w[8]))
	}
	n := len(params)
	x = rmsNorm(x, params[n-2])
	return linear(x, params[n-1]), patterns
}
