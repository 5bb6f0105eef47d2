package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
)

// ModelConfig is the shape of a small decoder: GPT-2 (Hugging Face GPT2Config
// names) or, with Arch "llama", a Llama decoder (RMSNorm, rotary positions,
// SwiGLU MLP, grouped-query attention, untied LM head).
type ModelConfig struct {
	Arch       string `json:"architecture"` // "gpt2" (default) or "llama"
	VocabSize  int    `json:"vocab_size"`
	NPositions int    `json:"n_positions"`
	NEmbd      int    `json:"n_embd"`
	NLayer     int    `json:"n_layer"`
	NHead      int    `json:"n_head"`
	// Llama only: key/value heads (0: NHead), MLP width (0: 4·NEmbd), RoPE base (0: 10000).
	NKVHead   int     `json:"n_kv_head,omitempty"`
	NInner    int     `json:"n_inner,omitempty"`
	RopeTheta float64 `json:"rope_theta,omitempty"`
}

func (c ModelConfig) isLlama() bool { return c.Arch == "llama" }

func (c ModelConfig) kvHeads() int {
	if c.NKVHead > 0 {
		return c.NKVHead
	}
	return c.NHead
}

func (c ModelConfig) inner() int {
	if c.NInner > 0 {
		return c.NInner
	}
	return 4 * c.NEmbd
}

func (c ModelConfig) theta() float64 {
	if c.RopeTheta > 0 {
		return c.RopeTheta
	}
	return 10000
}

func (c ModelConfig) validate() error {
	switch {
	case c.Arch != "" && c.Arch != "gpt2" && c.Arch != "llama":
		return fmt.Errorf("model.architecture %q is not supported for training (expected gpt2 or llama)", c.Arch)
	case c.VocabSize <= 0:
		return fmt.Errorf("model.vocab_size must be positive, got %d", c.VocabSize)
	case c.NPositions <= 0:
		return fmt.Errorf("model.n_positions must be positive, got %d", c.NPositions)
	case c.NLayer <= 0:
		return fmt.Errorf("model.n_layer must be positive, got %d", c.NLayer)
	case c.NHead <= 0 || c.NEmbd <= 0 || c.NEmbd%c.NHead != 0:
		return fmt.Errorf("model.n_embd (%d) must be a positive multiple of model.n_head (%d)", c.NEmbd, c.NHead)
	case c.isLlama() && (c.kvHeads() <= 0 || c.NHead%c.kvHeads() != 0):
		return fmt.Errorf("model.n_kv_head (%d) must divide model.n_head (%d)", c.kvHeads(), c.NHead)
	case c.isLlama() && (c.NEmbd/c.NHead)%2 != 0:
		return fmt.Errorf("model: the head size %d must be even for rotary positions", c.NEmbd/c.NHead)
	}
	return nil
}

// ParamSpec is one weight tensor, named and laid out as in a Hugging Face
// GPT2LMHeadModel checkpoint (Conv1D weights are [in, out]; the LM head is tied
// to transformer.wte.weight and not stored).
type ParamSpec struct {
	Name  string
	Shape []int
}

// Params lists the weights in checkpoint order (Hugging Face names and layouts).
func (c ModelConfig) Params() []ParamSpec {
	if c.isLlama() {
		return c.llamaParams()
	}
	d := c.NEmbd
	ps := []ParamSpec{
		{"transformer.wte.weight", []int{c.VocabSize, d}},
		{"transformer.wpe.weight", []int{c.NPositions, d}},
	}
	for l := 0; l < c.NLayer; l++ {
		p := fmt.Sprintf("transformer.h.%d.", l)
		ps = append(ps,
			ParamSpec{p + "ln_1.weight", []int{d}}, ParamSpec{p + "ln_1.bias", []int{d}},
			ParamSpec{p + "attn.c_attn.weight", []int{d, 3 * d}}, ParamSpec{p + "attn.c_attn.bias", []int{3 * d}},
			ParamSpec{p + "attn.c_proj.weight", []int{d, d}}, ParamSpec{p + "attn.c_proj.bias", []int{d}},
			ParamSpec{p + "ln_2.weight", []int{d}}, ParamSpec{p + "ln_2.bias", []int{d}},
			ParamSpec{p + "mlp.c_fc.weight", []int{d, 4 * d}}, ParamSpec{p + "mlp.c_fc.bias", []int{4 * d}},
			ParamSpec{p + "mlp.c_proj.weight", []int{4 * d, d}}, ParamSpec{p + "mlp.c_proj.bias", []int{d}},
		)
	}
	return append(ps, ParamSpec{"transformer.ln_f.weight", []int{d}}, ParamSpec{"transformer.ln_f.bias", []int{d}})
}

// InitParams draws GPT-2's initialisation (transformers' _init_weights):
// N(0, 0.02) for embeddings and weights, N(0, 0.02/√(2·n_layer)) for the
// residual projections (c_proj), zeros for biases, ones for LayerNorm gains.
func (c ModelConfig) InitParams(seed uint64) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	specs := c.Params()
	out := make([][]float32, len(specs))
	for i, s := range specs {
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		v := make([]float32, n)
		switch {
		case hasSuffix(s.Name, "ln_1.weight", "ln_2.weight", "ln_f.weight", "layernorm.weight", "model.norm.weight"):
			for j := range v {
				v[j] = 1
			}
		case hasSuffix(s.Name, ".bias"):
		default:
			std := 0.02
			if hasSuffix(s.Name, "c_proj.weight", "o_proj.weight", "down_proj.weight") {
				std /= math.Sqrt(2 * float64(c.NLayer))
			}
			for j := range v {
				v[j] = float32(rng.NormFloat64() * std)
			}
		}
		out[i] = v
	}
	return out
}

func hasSuffix(s string, suffixes ...string) bool {
	for _, x := range suffixes {
		if len(s) >= len(x) && s[len(s)-len(x):] == x {
			return true
		}
	}
	return false
}

// layerNorm normalises over the last axis with a biased variance (torch.nn.LayerNorm).
func layerNorm(x, gamma, beta *Node) *Node {
	mean := ReduceAndKeep(x, ReduceMean, -1)
	xc := Sub(x, mean)
	v := ReduceAndKeep(Square(xc), ReduceMean, -1)
	return Add(Mul(Div(xc, Sqrt(AddScalar(v, 1e-5))), along(gamma, x)), along(beta, x))
}

// along broadcasts a vector over the last axis of x to x's shape.
func along(vec, x *Node) *Node {
	dims := x.Shape().Dimensions
	lead := make([]int, len(dims)-1)
	for i := range lead {
		lead[i] = 0
	}
	return BroadcastToDims(InsertAxes(vec, lead...), dims...)
}

// dense is x·W + b over the last axis (GPT-2 Conv1D, W [in, out]).
func dense(x, w, b *Node) *Node {
	y := Einsum("btd,de->bte", x, w)
	return Add(y, along(b, y))
}

// geluNew is GPT-2's tanh approximation 0.5x(1+tanh(√(2/π)(x+0.044715x³))).
func geluNew(x *Node) *Node {
	inner := MulScalar(Add(x, MulScalar(Mul(x, Square(x)), 0.044715)), math.Sqrt(2/math.Pi))
	return Mul(MulScalar(x, 0.5), OnePlus(Tanh(inner)))
}

// forward builds the decoder over ids [B, T] int32 and returns logits [B, T, V] and,
// when wantAttn, each layer's attention pattern [B, H, T, T].
func (c ModelConfig) forward(params []*Node, ids *Node, wantAttn bool) (logits *Node, patterns []*Node) {
	if c.isLlama() {
		return c.llamaForward(params, ids, wantAttn)
	}
	dims := ids.Shape().Dimensions
	b, t := dims[0], dims[1]
	d, h := c.NEmbd, c.NHead
	hd := d / h
	g := ids.Graph()
	wte, wpe := params[0], params[1]
	x := Gather(wte, InsertAxes(ids, -1))     // [B, T, D]
	pos := SliceAxis(wpe, 0, AxisRange(0, t)) // [T, D]
	x = Add(x, BroadcastToDims(InsertAxes(pos, 0), b, t, d))
	causal := LowerTriangular(g, t) // [T, T] bool
	mask := BroadcastToDims(InsertAxes(causal, 0, 0), b, h, t, t)
	low := BroadcastToDims(Scalar(g, x.DType(), -1e9), b, h, t, t)
	for l := 0; l < c.NLayer; l++ {
		w := params[2+12*l : 2+12*(l+1)]
		a := layerNorm(x, w[0], w[1])
		qkv := dense(a, w[2], w[3]) // [B, T, 3D]
		q := Reshape(SliceAxis(qkv, 2, AxisRange(0, d)), b, t, h, hd)
		k := Reshape(SliceAxis(qkv, 2, AxisRange(d, 2*d)), b, t, h, hd)
		v := Reshape(SliceAxis(qkv, 2, AxisRange(2*d, 3*d)), b, t, h, hd)
		scores := MulScalar(Einsum("bqhd,bkhd->bhqk", q, k), 1/math.Sqrt(float64(hd)))
		p := Softmax(Where(mask, scores, low), -1)
		if wantAttn {
			patterns = append(patterns, p)
		}
		o := Reshape(Einsum("bhqk,bkhd->bqhd", p, v), b, t, d)
		x = Add(x, dense(o, w[4], w[5]))
		m := layerNorm(x, w[6], w[7])
		m = geluNew(dense(m, w[8], w[9]))
		x = Add(x, dense(m, w[10], w[11]))
	}
	n := len(params)
	x = layerNorm(x, params[n-2], params[n-1])
	logits = Einsum("btd,vd->btv", x, wte)
	return logits, patterns
}

// maskedCrossEntropy is the mean over positions with target ≠ ignore of
// −log softmax(logits)[target] (torch CrossEntropyLoss(ignore_index)), and the
// number of such positions.
func maskedCrossEntropy(logits, targets *Node, ignore int) (loss, count *Node) {
	v := logits.Shape().Dimensions[2]
	valid := NotEqual(targets, Scalar(targets.Graph(), targets.DType(), ignore))
	safe := Where(valid, targets, ZerosLike(targets))
	logp := LogSoftmax(logits, -1)
	picked := ReduceSum(Mul(logp, OneHot(safe, v, logp.DType())), -1) // [B, T]
	w := ConvertDType(valid, logp.DType())
	count = ReduceAllSum(w)
	loss = Div(Neg(ReduceAllSum(Mul(picked, w))), Max(count, OnesLike(count)))
	return loss, count
}
