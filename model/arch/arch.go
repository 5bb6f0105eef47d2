// Package arch defines transformer architectures as GoMLX graph-building
// functions over weight nodes, so that one definition serves inference with
// capture (package model), training and gradient diagnostics.
//
// An Architecture lists the checkpoint tensors it needs (Params) and builds the
// embedding, one block, the final norm and the head from graph nodes. The same
// block function is used for every layer: the caller feeds layer l's weights
// as the nodes of Weights (keyed by Param.Key, which does not depend on l).
// Every activation carries a leading batch axis B: the residual stream is
// [B, T, width], queries [B, heads, T, head_dim], patterns [B, heads, T, C].
//
// Inference (package model) and training (package train) build their graphs
// from these functions alone:
//
//	x := a.Embed(embedW, ids, typeIDs, positions)    // ids etc. [B, T] int32
//	for l := range layers { x = a.Block(layerW[l], x, arch.AttentionInputs{Mask: mask, Cos: cos, Sin: sin}).Out }
//	logits := a.Head(headW, a.FinalNorm(finalW, x))  // [B, T, vocab]
//
// with a boolean mask [B, T, T] (causal and/or padding) and the RoPE tables
// from RopeTables; every op used has a gradient (fused kernels differentiate
// through their decomposed form).
package arch

import (
	"fmt"
	"math"
	"slices"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"
)

// Param is one checkpoint tensor an architecture needs.
type Param struct {
	Key   string // name inside Weights (the same for every layer)
	Name  string // tensor name in the checkpoint (layer-specific)
	Shape []int  // expected shape, checked at load time
}

// Weights maps Param.Key to the node holding that weight.
type Weights map[string]*Node

// AttentionInputs carries what attention needs besides the residual stream x [B, T, width].
type AttentionInputs struct {
	// Mask [B, T, C] (or already broadcast, [B, heads, T, C]) bool: query i
	// may attend key j. C = T without a cache; with a cache, C is the cache
	// capacity.
	Mask *Node
	// Cos, Sin [T, rotary_dim] RoPE tables for the T query positions, shared
	// by the batch (nil without RoPE); see RopeTables.
	Cos, Sin *Node
	// PastK, PastV [B, kv_heads, C, head_dim]: a KV cache; the block writes
	// this step's keys and values at position Past (scalar int32) and attends
	// over the whole cache. nil: no cache, keys are this step's T tokens.
	PastK, PastV *Node
	Past         *Node
	// Dropout, when non-nil, is applied where transformers applies dropout in
	// training mode (attention probabilities, sub-layer outputs); nil is
	// evaluation mode. Only families that declare dropout rates use it (BERT).
	Dropout DropoutFunc
	// Edits are interventions on the attention activations (see Edit and
	// Attend); nil: none.
	Edits Edits
	// Taps, when non-nil, receives the (edited) HookScores and HookZ nodes
	// from Attend, for recording.
	Taps map[string]*Node
	// Blockwise, when set, makes Attend compute attention blockwise
	// (BlockwiseAttention): Mask is not used and Attend returns each row's
	// log-sum-exp instead of the pattern. It excludes Edits, Taps and Dropout;
	// the window is Blockwise.Window, not Mask.
	Blockwise *Blockwise
	// Float64, when set, computes the scores, the softmax and the product with
	// v in float64 from the float32 q, k and v, rounding the pattern and the
	// product once to float32 (materialised and blockwise attention alike); the
	// HookScores and HookPattern edits then apply in float64. A float32 softmax
	// of a trained model's scores (logits ~30 over 2,048 keys) is ~2e-6 from the
	// exact one, so a tile recomputed from a qk capture (in float64) differs
	// from the stored pattern by that much; with Float64 both are within float32
	// rounding of each other. false: float32 throughout, as PyTorch's eager
	// attention.
	Float64 bool
}

// BlockOutputs are the nodes a block produces.
type BlockOutputs struct {
	Out     *Node // [B, T, width] residual stream after the block
	Pattern *Node // [B, heads, T, C] post-softmax attention (nil with Blockwise)
	LSE     *Node // [B, heads, T] float64: each row's log-sum-exp (Blockwise only)
	Q       *Node // [B, heads, T, head_dim] (after RoPE)
	K, V    *Node // [B, kv_heads, C, head_dim]: this step's keys/values, or the updated cache
	// AttnPreLN and MLPPreLN are the residual sums x + Sublayer(x) [B, T, width]
	// entering the attention and MLP sub-layers' LayerNorms in post-norm families
	// (BERT: BertSelfOutput and BertOutput before their LayerNorm); nil in
	// pre-norm families, whose residual stream is never normalised in place.
	AttnPreLN, MLPPreLN *Node
}

// Classifier is implemented by families with a sequence-classification head
// (transformers' <Family>ForSequenceClassification).
type Classifier interface {
	// ClassifierParams lists the head's weights for labels outputs.
	ClassifierParams(labels int) []Param
	// Classify maps the encoder output [B, T, width] to logits [B, labels];
	// drop (nil: evaluation mode) is the classifier's dropout.
	Classify(w Weights, x *Node, drop DropoutFunc) *Node
}

// DropoutFunc applies dropout to x (identity in evaluation mode); rate is the
// drop probability named by the config (hidden or attention dropout).
type DropoutFunc func(x *Node, rate float64) *Node

// Architecture is one model family's forward pass.
type Architecture interface {
	EmbedParams() []Param
	LayerParams(layer int) []Param
	FinalParams() []Param // final norm (empty when the family has none)
	HeadParams() []Param  // LM / MLM head

	// Embed maps ids [B, T] int32 (and token types [B, T], positions [B, T],
	// int32) to [B, T, width].
	Embed(w Weights, ids, typeIDs, positions *Node) *Node
	Block(w Weights, x *Node, a AttentionInputs) BlockOutputs
	// FinalNorm applies the final norm; families without one return x.
	FinalNorm(w Weights, x *Node) *Node
	// Head maps [B, T, width] to logits [B, T, vocab].
	Head(w Weights, x *Node) *Node
	// Causal reports whether attention is causal (decoders).
	Causal() bool
	// RotaryDim is the number of rotated dimensions per head (0: no RoPE).
	RotaryDim() int
	// RopeTheta is the RoPE base.
	RopeTheta() float64
	// KVHeads and HeadDim describe the keys/values kept in a KV cache.
	KVHeads() int
	HeadDim() int
}

// LayerNorm normalises over the last axis: (x-mean)/sqrt(var+eps)·gamma+beta
// (Ba et al. 2016; torch.nn.LayerNorm, biased variance). It is evaluated in
// PyTorch's CPU order, (x·rstd + (−rstd·mean))·gamma + beta, whose rounding
// the reference checkpoints' outputs carry (trained rows with a large mean are
// ill-conditioned).
func LayerNorm(x, gamma, beta *Node, eps float64) *Node {
	mean := ReduceAndKeep(x, ReduceMean, -1)
	v := ReduceAndKeep(Square(Sub(x, mean)), ReduceMean, -1)
	rstd := rsqrt(AddScalar(v, eps))
	bias := Neg(Mul(rstd, mean))
	y := Add(Mul(x, rstd), bias)
	y = Mul(y, Along(gamma, y))
	if beta != nil {
		y = Add(y, Along(beta, y))
	}
	return y
}

// FastLayerNorm is LayerNorm through the backend's fused kernel where there
// is one: one pass per row, computed as (x−mean)·rstd·gamma+beta. Its rounding
// differs from PyTorch's evaluation order; pre-norm models (GPT-2, GPT-NeoX)
// still match the references to their tolerances, post-norm BERT uses LayerNorm.
func FastLayerNorm(x, gamma, beta *Node, eps float64) *Node {
	out, _ := InternalFusedOpCaller(func() *Node {
		return BackendFusedLayerNorm(x, []int{x.Rank() - 1}, eps, gamma, beta)
	}, func() *Node { return LayerNorm(x, gamma, beta, eps) }, true)
	return out
}

// Along reshapes a vector v [D] to [1, ..., D] so that it broadcasts along the
// last axis of x [..., D] (size-1 axes broadcast implicitly).
func Along(v, x *Node) *Node {
	dims := make([]int, x.Rank())
	for i := range dims {
		dims[i] = 1
	}
	dims[len(dims)-1] = v.Shape().Dimensions[0]
	return Reshape(v, dims...)
}

// RMSNorm is x·rsqrt(mean(x²)+eps)·w (Zhang & Sennrich 2019; LlamaRMSNorm).
func RMSNorm(x, w *Node, eps float64) *Node {
	v := ReduceAndKeep(Square(x), ReduceMean, -1)
	y := Mul(x, rsqrt(AddScalar(v, eps)))
	return Mul(y, Along(w, y))
}

// rsqrt is 1/√x: the value from the backend's Rsqrt, the gradient from the
// decomposed 1/√x (GoMLX v0.28.8 defines no gradient for Rsqrt).
func rsqrt(x *Node) *Node {
	out, _ := InternalFusedOpCaller(func() *Node { return Rsqrt(x) }, func() *Node { return Reciprocal(Sqrt(x)) }, true)
	return out
}

// Linear is x·Wᵀ+b with a torch.nn.Linear weight W [out, in]; b may be nil.
// It uses the backend's fused dense op (matmul, then bias added in place) where
// there is one.
func Linear(x, w, b *Node) *Node {
	return dense(x, w, b, compute.DenseLayoutOutputsInput, func() *Node {
		return Dot(x, w).General([]int{x.Rank() - 1}, nil, []int{1}, nil)
	})
}

// Conv1D is x·W+b with a GPT-2 Conv1D weight W [in, out].
func Conv1D(x, w, b *Node) *Node {
	return dense(x, w, b, compute.DenseLayoutInputOutputs, func() *Node { return MatMul(x, w) })
}

// Conv1DAct is Activation(name)(Conv1D(x, w, b)). For float32 gelu_new and gelu,
// the activations GeluTanh and GeluErf take from the backend's fused kernel, the
// backend's dense op applies that same kernel to each output row right after its
// bias, in the same parallel pass, instead of as one more op over the output: the
// values are those of the unfused form. Gradients go through the unfused form.
func Conv1DAct(x, w, b *Node, name string) *Node {
	return denseAct(x, w, b, compute.DenseLayoutInputOutputs, name, func() *Node { return Conv1D(x, w, b) })
}

// LinearAct is Activation(name)(Linear(x, w, b)), fused as Conv1DAct.
func LinearAct(x, w, b *Node, name string) *Node {
	return denseAct(x, w, b, compute.DenseLayoutOutputsInput, name, func() *Node { return Linear(x, w, b) })
}

func denseAct(x, w, b *Node, layout compute.DenseLayout, name string, plain func() *Node) *Node {
	act := Activation(name)
	t, ok := fusedActivation(name)
	if !ok || x.DType() != dtypes.Float32 {
		return act(plain())
	}
	out, _ := InternalFusedOpCaller(func() *Node {
		return BackendFusedDense(x, w, b, compute.DenseConfig{WeightLayout: layout, Activation: compute.ActivationConfig{Type: t}})
	}, func() *Node { return act(plain()) }, true)
	return out
}

// fusedActivation is the backend activation whose kernel Activation(name) uses in
// float32 (GeluTanh, GeluErf); false for the activations built from graph ops.
func fusedActivation(name string) (compute.ActivationType, bool) {
	switch name {
	case "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_approximate":
		return compute.ActivationGeluApproximate, true
	case "silu", "swish", "relu":
		return compute.ActivationNone, false
	}
	return compute.ActivationGelu, true
}

// FusedQKV projects x [B, T, width] with a GPT-2 Conv1D weight W [width, 3·d]
// and bias b [3·d] (nil: none) holding the query, key and value projections side
// by side, x·W+b, and returns the three [B, T, d] parts. Through the backend's
// fused QKV projection (one matmul whose output is split, biases added, in one
// pass) where there is one; else Conv1D and three slices.
func FusedQKV(x, w, b *Node, d int) (q, k, v *Node) {
	decomposed := func() []*Node {
		qkv := Conv1D(x, w, b)
		axis := qkv.Rank() - 1
		return []*Node{SliceAxis(qkv, axis, AxisRange(0, d)), SliceAxis(qkv, axis, AxisRange(d, 2*d)), SliceAxis(qkv, axis, AxisRange(2*d, 3*d))}
	}
	outs, _ := InternalFusedOpCallerMulti(func() []*Node {
		var bq, bk, bv *Node
		if b != nil {
			bq, bk, bv = SliceAxis(b, 0, AxisRange(0, d)), SliceAxis(b, 0, AxisRange(d, 2*d)), SliceAxis(b, 0, AxisRange(2*d, 3*d))
		}
		q, k, v := BackendFusedAttentionQKVProjection(x, w, bq, bk, bv, d, d)
		return []*Node{q, k, v}
	}, decomposed, true)
	return outs[0], outs[1], outs[2]
}

func dense(x, w, b *Node, layout compute.DenseLayout, matmul func() *Node) *Node {
	out, _ := InternalFusedOpCaller(func() *Node {
		return BackendFusedDense(x, w, b, compute.DenseConfig{WeightLayout: layout})
	}, func() *Node {
		y := matmul()
		if b != nil {
			y = Add(y, Along(b, y))
		}
		return y
	}, true)
	return out
}

// GeluTanh is the tanh approximation 0.5x(1+tanh(√(2/π)(x+0.044715x³))) (GPT-2's "gelu_new"),
// through the backend's fused kernel (on the Go backend one SIMD pass with a float32
// tanh); it agrees with the float64 formula to 2e-6 relative and with the decomposed
// form x·σ(2·√(2/π)(x+0.044715x³)) (0.5(1+tanh z) = σ(2z)) to a few float32 roundings
// (TestGeluForms). Gradients go through that sigmoid form, decomposed.
func GeluTanh(x *Node) *Node {
	if x.DType() != dtypes.Float32 {
		return geluTanhSigmoid(x) // the fused kernel computes in float32 precision
	}
	out, _ := InternalFusedOpCaller(func() *Node {
		return BackendFusedActivation(x, compute.ActivationConfig{Type: compute.ActivationGeluApproximate})
	}, func() *Node { return geluTanhSigmoid(x) }, true)
	return out
}

// geluTanhSigmoid is GeluTanh decomposed into graph ops, x·σ(2·√(2/π)(x+0.044715x³)).
func geluTanhSigmoid(x *Node) *Node {
	inner := MulScalar(Add(x, MulScalar(Mul(x, Square(x)), 0.044715)), 2*math.Sqrt(2/math.Pi))
	return Mul(x, Sigmoid(inner))
}

// GeluErf is the exact GELU x·Φ(x) = 0.5x(1+erf(x/√2)) (Hendrycks & Gimpel 2016;
// BERT's and GPT-NeoX's "gelu") through the backend's fused kernel where it has
// one. The Go backend evaluates erf in float32 with Abramowitz & Stegun 7.1.26
// (|error| ≤ 1.5e-7 plus float32 rounding), the same formula as PyTorch's
// vectorised CPU erf, whose outputs the reference checkpoints carry (TestGeluErf).
// Gradients go through the decomposed form, which uses the backend's Erf op.
func GeluErf(x *Node) *Node {
	if x.DType() != dtypes.Float32 {
		// The fused kernel's erf has float32 accuracy whatever the dtype: in float64
		// (gradient checks) the decomposed form keeps the value and its derivative exact.
		return geluErf(x)
	}
	out, _ := InternalFusedOpCaller(func() *Node {
		return BackendFusedActivation(x, compute.ActivationConfig{Type: compute.ActivationGelu})
	}, func() *Node { return geluErf(x) }, true)
	return out
}

func geluErf(x *Node) *Node {
	z := MulScalar(x, 1/math.Sqrt2)
	erf := Erf(z)
	if x.DType() != dtypes.Float32 {
		erf = erfSeries(z)
	}
	return Mul(MulScalar(x, 0.5), OnePlus(erf))
}

// erfSeries is erf(z) from graph ops to float64 accuracy (|error| < 1e-15 against
// math.Erf): for |z| < 2 the Maclaurin series 2/√π Σ (−1)ⁿ z^(2n+1)/(n!(2n+1)) (40 terms),
// beyond it 1 − erfc(|z|) with erfc from its continued fraction
// e^(−z²)/√π · 1/(z + ½/(z + 1/(z + 3⁄2/(z + …)))) (Abramowitz & Stegun 7.1.5 and
// 7.1.14; 40 levels), signed. The backend's Erf op evaluates Abramowitz & Stegun 7.1.26
// (error 1.5e-7) also in float64, while its gradient is the exact 2/√π·e^(−z²): a
// float64 gradient check through it fails by ~1e-6. Autodiff differentiates this form
// term by term, so value and gradient agree. Each branch sees its input clamped to its
// own range, so the branch not taken never produces an infinity.
func erfSeries(z *Node) *Node {
	const cut = 2.0
	zs := ClipScalar(z, -cut, cut)
	z2 := Square(zs)
	sum, term := zs, zs
	for n := 1; n < 40; n++ {
		term = Mul(term, MulScalar(z2, -1/float64(n)))
		sum = Add(sum, MulScalar(term, 1/float64(2*n+1)))
	}
	series := MulScalar(sum, 2/math.Sqrt(math.Pi))
	a := MaxScalar(Abs(z), cut)
	f := a
	for k := 40; k >= 1; k-- {
		f = Add(a, DivScalar(Reciprocal(f), 2/float64(k)))
	}
	tail := Mul(Sign(z), OneMinus(Div(Exp(Neg(Square(a))), MulScalar(f, math.Sqrt(math.Pi)))))
	return Where(LessThan(Abs(z), Scalar(z.Graph(), z.DType(), cut)), series, tail)
}

// SiLU is x·σ(x).
func SiLU(x *Node) *Node { return Mul(x, Sigmoid(x)) }

// Activation returns the activation named by a Hugging Face config.
func Activation(name string) func(*Node) *Node {
	switch name {
	case "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_approximate":
		return GeluTanh
	case "silu", "swish":
		return SiLU
	case "relu":
		return func(x *Node) *Node { return Max(x, ZerosLike(x)) }
	}
	return GeluErf
}

// SplitHeads reshapes [B, T, heads·head_dim] to [B, heads, T, head_dim].
func SplitHeads(x *Node, heads, headDim int) *Node {
	d := x.Shape().Dimensions
	return TransposeAllDims(Reshape(x, d[0], d[1], heads, headDim), 0, 2, 1, 3)
}

// MergeHeads reshapes [B, heads, T, head_dim] to [B, T, heads·head_dim].
func MergeHeads(x *Node) *Node {
	d := x.Shape().Dimensions
	return Reshape(TransposeAllDims(x, 0, 2, 1, 3), d[0], d[2], d[1]*d[3])
}

// QKVHeads splits a fused projection x [B, T, (heads+2·kvHeads)·headDim], queries,
// keys and values side by side (Phi-3's qkv_proj), into q [B, heads, T, headDim]
// and k, v [B, kvHeads, T, headDim], each gathered straight from x: the Go backend
// copies each head_dim-long row with one memmove, where slicing x first copies it
// value by value and the transposes copy it again. The values are the
// slice-and-transpose ones, through which gradients go.
func QKVHeads(x *Node, heads, kvHeads, headDim int) (q, k, v *Node) {
	return headsOf(x, 0, heads, headDim), headsOf(x, heads, kvHeads, headDim), headsOf(x, heads+kvHeads, kvHeads, headDim)
}

// headsOf returns heads first … first+heads−1 of x [B, T, n·headDim] as [B, heads,
// T, headDim].
func headsOf(x *Node, first, heads, headDim int) *Node {
	d := x.Shape().Dimensions
	b, t, n := d[0], d[1], d[2]/headDim
	x4 := reshape(x, b, t, n, headDim)
	out, _ := InternalFusedOpCaller(func() *Node {
		// index (i, j, k) of the [b, heads, t, 3] gather indices points at x4[i, k, first+j]
		idx := make([]int32, 0, 3*b*heads*t)
		for i := range b {
			for j := range heads {
				for k := range t {
					idx = append(idx, int32(i), int32(k), int32(first+j))
				}
			}
		}
		return Gather(x4, ConstTensor(x.Graph(), tensors.FromFlatDataAndDimensions(idx, b, heads, t, 3)))
	}, func() *Node {
		return TransposeAllDims(SliceAxis(x4, 2, AxisRange(first, first+heads)), 0, 2, 1, 3)
	}, true)
	return out
}

// ApplyRope rotates the first rotDim dims of each head of x [B, heads, T,
// head_dim] with the rotate-half convention of Hugging Face Llama/GPT-NeoX:
// x·cos + rotate_half(x)·sin, cos/sin [T, rotDim] (Su et al. 2021, RoFormer).
// The remaining head_dim − rotDim dims pass unchanged (GPT-NeoX's partial
// rotary).
func ApplyRope(x, cos, sin *Node, rotDim int) *Node {
	hd := x.Shape().Dimensions[3]
	xr := x
	var pass *Node
	if rotDim < hd {
		xr = SliceAxis(x, 3, AxisRange(0, rotDim))
		pass = SliceAxis(x, 3, AxisRange(rotDim, hd))
	}
	half := rotDim / 2
	x1 := SliceAxis(xr, 3, AxisRange(0, half))
	x2 := SliceAxis(xr, 3, AxisRange(half, rotDim))
	rot := Concatenate([]*Node{Neg(x2), x1}, 3)
	c := BroadcastToDims(InsertAxes(cos, 0, 0), xr.Shape().Dimensions...)
	s := BroadcastToDims(InsertAxes(sin, 0, 0), xr.Shape().Dimensions...)
	y := Add(Mul(xr, c), Mul(rot, s))
	if pass != nil {
		y = Concatenate([]*Node{y, pass}, 3)
	}
	return y
}

// Attention computes softmax(q·kᵀ/√head_dim + mask)·v with grouped-query
// heads (Vaswani et al. 2017; transformers' eager_attention_forward with
// repeat_kv): q [B, heads, T, hd], k, v [B, kv_heads, C, hd], mask [B, T, C]
// or [B, heads, T, C] bool. Query head h uses kv head h/(heads/kv_heads). It
// returns the merged output [B, T, heads·hd] and the pattern [B, heads, T,
// C]. Masked entries get probability exactly 0 (the logit is replaced by the
// lowest float32, as transformers' eager attention does).
func Attention(q, k, v, mask *Node) (out, pattern *Node) {
	return attention(q, k, v, mask, AttentionOptions{}, false, nil, nil)
}

// AttentionOptions vary the scores of AttentionWith.
type AttentionOptions struct {
	// Scale multiplies q·kᵀ; 0 means 1/√head_dim. GPT-Neo uses 1 (no scaling),
	// Gemma 2 query_pre_attn_scalar^(−1/2).
	Scale float64
	// SoftCap > 0 replaces the scaled scores s by cap·tanh(s/cap) before the
	// mask (Gemma 2's attn_logit_softcapping).
	SoftCap float64
}

// Default reports whether the options give the default scores q·kᵀ/√headDim.
func (o AttentionOptions) Default(headDim int) bool {
	return o.SoftCap == 0 && (o.Scale == 0 || o.Scale == 1/math.Sqrt(float64(headDim)))
}

// ScoreOptioner is implemented by the families whose Block passes options to
// AttendWith (scores other than q·kᵀ/√head_dim: GPT-Neo, Gemma 2), so that
// callers can tell without building a graph (the qk store records them to
// recompute the weights).
type ScoreOptioner interface {
	AttentionOptions() AttentionOptions
}

// ScoreOptions returns a's attention options (zero: the default scores).
func ScoreOptions(a Architecture) AttentionOptions {
	if s, ok := a.(ScoreOptioner); ok {
		return s.AttentionOptions()
	}
	return AttentionOptions{}
}

// AttentionWith is Attention with a given scale and optional soft-capping.
func AttentionWith(q, k, v, mask *Node, opts AttentionOptions) (out, pattern *Node) {
	return attention(q, k, v, mask, opts, false, nil, nil)
}

// attention is AttentionWith with interventions ed on its hook points (nil: none);
// taps, when non-nil, receives the (edited) HookScores and HookZ nodes.
//
// With f64 (AttentionInputs.Float64) the scores (q·kᵀ·scale, soft-capped, masked),
// HookScores, the softmax, HookPattern and the product with v are computed in
// float64 from the float32 q, k and v, and the pattern and the product are rounded
// once to q's dtype; the HookScores tap is rounded to q's dtype too. Otherwise all
// of it is in q's dtype, as PyTorch's eager attention computes it.
func attention(q, k, v, mask *Node, opts AttentionOptions, f64 bool, ed Edits, taps map[string]*Node) (out, pattern *Node) {
	q, k, v = ed[HookQ].Apply(q), ed[HookK].Apply(k), ed[HookV].Apply(v)
	qd := q.Shape().Dimensions
	b, heads, t, hd := qd[0], qd[1], qd[2], qd[3]
	kvHeads, c := k.Shape().Dimensions[1], k.Shape().Dimensions[2]
	g := heads / kvHeads
	dt, ct := q.DType(), q.DType() // input and compute dtypes (ConvertDType to the same dtype is a no-op)
	if f64 {
		ct = dtypes.Float64
	}
	scale := opts.Scale
	if scale == 0 {
		scale = 1 / math.Sqrt(float64(hd))
	}
	// When the scale is a power of two (head_dim a power of four, e.g. 64), scaling
	// q first is exact and touches heads·T·hd values instead of heads·T·C.
	_, exp := math.Frexp(scale)
	preScale := math.Ldexp(0.5, exp) == scale
	if preScale && scale != 1 {
		q = MulScalar(q, scale)
	}
	qg := reshape(ConvertDType(q, ct), b, kvHeads, g*t, hd)
	scores := Dot(qg, ConvertDType(k, ct)).General([]int{3}, []int{0, 1}, []int{3}, []int{0, 1}) // [b, kv, g*t, c]
	if !preScale {
		scores = MulScalar(scores, scale)
	}
	scores = reshape(scores, b, heads, t, c)
	if opts.SoftCap > 0 {
		scores = SoftCap(scores, opts.SoftCap)
	}
	scores = ed[HookScores].Apply(maskScores(scores, mask, f64))
	p := ed[HookPattern].Apply(softmax(scores))
	pg := reshape(p, b, kvHeads, g*t, c)
	o := Dot(pg, ConvertDType(v, ct)).General([]int{3}, []int{0, 1}, []int{2}, []int{0, 1}) // [b, kv, g*t, hd]
	z := ed[HookZ].Apply(reshape(ConvertDType(o, dt), b, heads, t, hd))
	pattern = ConvertDType(p, dt)
	if taps != nil {
		taps[HookScores], taps[HookZ] = ConvertDType(scores, dt), z
	}
	out = MergeHeads(z)
	return out, pattern
}

// maskScores replaces the scores [B, heads, T, C] where mask ([B, T, C] or
// [B, heads, T, C]) is false by the lowest float32, as transformers' eager
// attention does. In float32 this is a select on the mask broadcast to every
// head; with f64 a bias (0 or −MaxFloat32) is added instead (one select on the
// [B, T, C] mask): the float64 sum rounds to −MaxFloat32 exactly for any
// |score| < 1e22.
func maskScores(scores, mask *Node, f64 bool) *Node {
	gr, dt, d := scores.Graph(), scores.DType(), scores.Shape().Dimensions
	if f64 {
		bias := Where(mask, Scalar(gr, dt, 0), Scalar(gr, dt, -math.MaxFloat32))
		if mask.Rank() == 3 {
			bias = InsertAxes(bias, 1)
		}
		return Add(scores, bias)
	}
	if mask.Rank() == 3 {
		mask = BroadcastToDims(InsertAxes(mask, 1), d...)
	}
	return Where(mask, scores, Scalar(gr, dt, -math.MaxFloat32))
}

// reshape is Reshape, skipped when x already has the dimensions: the Go backend copies
// a reshaped buffer that another op (or a graph output) also reads, such as the
// attention pattern (12·N² floats per GPT-2 layer).
func reshape(x *Node, dims ...int) *Node {
	if slices.Equal(x.Shape().Dimensions, dims) {
		return x
	}
	return Reshape(x, dims...)
}

// softmax is exp(x−max)/Σexp(x−max) over the last axis from graph ops, dividing by
// the sum (one rounding) where the Go backend's fused softmax multiplies by its
// rounded reciprocal: on the ill-conditioned input of the trained BERT reference
// the fused kernel lands 2.4e-4 from PyTorch's hidden states, this form 8.4e-5
// (tolerance 1e-4; TestReferenceModels). Graph ops also have a SIMD exp in
// float64, where the fused kernel's float64 exp is scalar.
func softmax(x *Node) *Node {
	e := Exp(Sub(x, StopGradient(ReduceAndKeep(x, ReduceMax, -1))))
	return Div(e, ReduceAndKeep(e, ReduceSum, -1))
}

// UpdateCache writes new [B, kv_heads, 1, hd] (one decode step) into cache
// [B, kv_heads, C, hd] at position past (scalar int32) and returns the updated
// cache (a select against a one-hot position mask: the Go backend has no
// DynamicUpdateSlice). Without a cache (cache nil) it returns new.
func UpdateCache(cache, new, past *Node) *Node {
	if cache == nil {
		return new
	}
	dims := cache.Shape().Dimensions
	if new.Shape().Dimensions[2] != 1 {
		panic(fmt.Sprintf("UpdateCache: a cached step takes one token, got %v", new.Shape()))
	}
	g := cache.Graph()
	at := Equal(Iota(g, shapes.Make(past.DType(), dims[2]), 0), BroadcastToDims(past, dims[2]))
	at = BroadcastToDims(Reshape(at, 1, 1, dims[2], 1), dims...)
	return Where(at, BroadcastToDims(new, dims...), cache)
}

// RopeTables returns cos and sin [len(positions), rotDim] for RoPE with base
// theta and no scaling, computed like transformers' default rotary embedding
// in float32: inv_freq_i = 1/θ^(2i/rotDim), angle = pos·inv_freq, tables =
// cat(angle, angle). Config.RopeTables adds the scaling types.
func RopeTables(positions []int, rotDim int, theta float64) (cos, sin []float32) {
	return (&Config{RopeTheta: theta}).RopeTables(positions, rotDim, len(positions))
}

// ApplyRopeInterleaved rotates the first rotDim dims of each head of x [B,
// heads, T, head_dim] in adjacent pairs (2i, 2i+1), GPT-J's and CodeGen's
// rotate_every_two: x·cos + rotate_every_two(x)·sin with the pair's angle
// repeated twice. cos and sin are the [T, rotDim] tables of RopeTables
// (cat(angle, angle)); their first half is interleaved here.
func ApplyRopeInterleaved(x, cos, sin *Node, rotDim int) *Node {
	d := x.Shape().Dimensions
	hd, half := d[3], rotDim/2
	xr := x
	var pass *Node
	if rotDim < hd {
		xr = SliceAxis(x, 3, AxisRange(0, rotDim))
		pass = SliceAxis(x, 3, AxisRange(rotDim, hd))
	}
	pairs := Reshape(xr, d[0], d[1], d[2], half, 2)
	even := SliceAxis(pairs, 4, AxisRange(0, 1))
	odd := SliceAxis(pairs, 4, AxisRange(1, 2))
	rot := Reshape(Concatenate([]*Node{Neg(odd), even}, 4), d[0], d[1], d[2], rotDim)
	twice := func(t *Node) *Node {
		n := t.Shape().Dimensions[0]
		h := InsertAxes(SliceAxis(t, 1, AxisRange(0, half)), -1)
		h = Reshape(BroadcastToDims(h, n, half, 2), n, rotDim)
		return BroadcastToDims(InsertAxes(h, 0, 0), xr.Shape().Dimensions...)
	}
	y := Add(Mul(xr, twice(cos)), Mul(rot, twice(sin)))
	if pass != nil {
		y = Concatenate([]*Node{y, pass}, 3)
	}
	return y
}

// SoftCap is cap·tanh(x/cap) (Gemma 2's logit soft-capping). The Go backend's
// float32 tanh is 1 − 2/(e^(2y)+1), whose cancellation near 0 costs up to
// 6e-8 absolute, cap·6e-8 after scaling (3e-6 on attention scores capped at
// 50); below |y| = 1 this uses Lambert's continued fraction
// tanh y = y/(1 + y²/(3 + y²/(5 + …))) (10 levels, exact to float32 there).
func SoftCap(x *Node, limit float64) *Node {
	y := DivScalar(x, limit)
	ys := ClipScalar(y, -1, 1)
	y2 := Square(ys)
	f := Add(ZerosLike(y2), Scalar(x.Graph(), x.DType(), 21))
	for k := 9; k >= 0; k-- {
		f = AddScalar(Div(y2, f), float64(2*k+1))
	}
	small := Div(ys, f)
	t := Where(LessThan(Abs(y), Scalar(x.Graph(), x.DType(), 1)), small, Tanh(y))
	return MulScalar(t, limit)
}
