package train

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/model/arch"
)

// ModelConfig is the shape of a small decoder to train from scratch: GPT-2
// (Hugging Face GPT2Config names) or, with Arch "llama", a Llama decoder
// (RMSNorm, rotary positions, SwiGLU MLP, grouped-query attention, untied LM
// head). It is turned into a Hugging Face config.json (HFConfig) whose family
// (package model's registry) defines the forward pass: training and inference
// run the same model/arch graph.
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
	// NormEps is the LayerNorm/RMSNorm epsilon (0: 1e-5).
	NormEps float64 `json:"norm_eps,omitempty"`
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

func (c ModelConfig) normEps() float64 {
	if c.NormEps > 0 {
		return c.NormEps
	}
	return 1e-5
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

// Checkpoint returns the parsed config.json of the model (HFConfig), which
// selects its architecture in package model.
func (c ModelConfig) Checkpoint() (*arch.Config, error) {
	b, err := json.Marshal(c.HFConfig(SpecialIDs{}))
	if err != nil {
		return nil, err
	}
	raw, err := checkpoint.ParseConfig(b)
	if err != nil {
		return nil, err
	}
	cc, err := model.ParseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("model config: %w", err)
	}
	return cc, nil
}

// Params lists the model's weights in checkpoint order, with Hugging Face
// names and layouts, as its architecture declares them (embedding, each
// layer, final norm, head); a tied head is listed once, as its embedding.
func (c ModelConfig) Params() []arch.Param {
	n, err := c.net()
	if err != nil {
		panic(err) // validate() guarantees a parsable config
	}
	return n.params
}

// net is one architecture with its trainable parameters: every Param of
// every part, each tensor name once (tied weights share one variable).
type net struct {
	cfg    *arch.Config
	a      arch.Architecture
	params []arch.Param
	index  map[string]int // checkpoint name → position in params
}

func (c ModelConfig) net() (*net, error) {
	cc, err := c.Checkpoint()
	if err != nil {
		return nil, err
	}
	return newNet(cc)
}

// newNet collects the parameters of cfg's architecture (any family of package model).
func newNet(cfg *arch.Config) (*net, error) {
	a, err := model.Architecture(cfg)
	if err != nil {
		return nil, err
	}
	n := &net{cfg: cfg, a: a, index: map[string]int{}}
	add := func(ps []arch.Param) {
		for _, p := range ps {
			if _, ok := n.index[p.Name]; !ok {
				n.index[p.Name] = len(n.params)
				n.params = append(n.params, p)
			}
		}
	}
	add(a.EmbedParams())
	for l := range cfg.Layers {
		add(a.LayerParams(l))
	}
	add(a.FinalParams())
	add(a.HeadParams())
	return n, nil
}

// weights maps a part's Params to the nodes of the trainable parameters.
func (n *net) weights(ps []arch.Param, nodes []*Node) arch.Weights {
	w := make(arch.Weights, len(ps))
	for _, p := range ps {
		w[p.Key] = nodes[n.index[p.Name]]
	}
	return w
}

// forward builds the architecture over ids [B, T] int32 (right-padded; causal
// families need no padding mask, encoders see every position): logits [B, T,
// V] and, when wantAttn, each layer's pattern [B, H, T, T]. It is the graph
// package model runs for inference, from the same model/arch functions.
func (n *net) forward(params []*Node, ids *Node, wantAttn bool) (logits *Node, patterns []*Node) {
	g := ids.Graph()
	dims := ids.Shape().Dimensions
	b, t := dims[0], dims[1]
	a := n.a
	positions := Iota(g, shapes.Make(ids.DType(), b, t), 1)
	x := a.Embed(n.weights(a.EmbedParams(), params), ids, ZerosLike(ids), positions)
	mask := BroadcastToDims(Const(g, true), t, t)
	if a.Causal() {
		mask = LowerTriangular(g, t)
	}
	in := arch.AttentionInputs{Mask: BroadcastToDims(InsertAxes(mask, 0), b, t, t)}
	full := in.Mask
	if rot := a.RotaryDim(); rot > 0 {
		pos := make([]int, t)
		for i := range pos {
			pos[i] = i
		}
		cos, sin := n.cfg.RopeTables(pos, rot, t)
		in.Cos = ConvertDType(Reshape(Const(g, cos), t, rot), x.DType())
		in.Sin = ConvertDType(Reshape(Const(g, sin), t, rot), x.DType())
	}
	for l := range n.cfg.Layers {
		in.Mask = full
		if w := n.cfg.Window(l); w > 0 { // keys i−w < j ≤ i (sliding-window attention)
			i := Iota(g, shapes.Make(ids.DType(), t, t), 0)
			j := Iota(g, shapes.Make(ids.DType(), t, t), 1)
			near := GreaterThan(j, SubScalar(i, float64(w)))
			in.Mask = LogicalAnd(full, BroadcastToDims(InsertAxes(near, 0), b, t, t))
		}
		o := a.Block(n.weights(a.LayerParams(l), params), x, in)
		x = o.Out
		if wantAttn {
			patterns = append(patterns, o.Pattern)
		}
	}
	x = a.FinalNorm(n.weights(a.FinalParams(), params), x)
	return a.Head(n.weights(a.HeadParams(), params), x), patterns
}

// InitParams draws GPT-2's initialisation (transformers' _init_weights) for
// every family: ones for norm gains (the weights of rank 1), zeros for
// biases, N(0, 0.02) for embeddings and matrices, N(0, 0.02/√(2·n_layer)) for
// the projections back into the residual stream (c_proj, o_proj, down_proj,
// attention.dense, dense_4h_to_h, output.dense).
func (c ModelConfig) InitParams(seed uint64) [][]float32 {
	return InitWeights(c.Params(), c.NLayer, seed)
}

// InitWeights draws the initialisation of InitParams for the parameters of
// any family (Params) with the given number of layers.
func InitWeights(specs []arch.Param, layers int, seed uint64) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	out := make([][]float32, len(specs))
	for i, s := range specs {
		v := make([]float32, numel(s.Shape))
		switch {
		case strings.HasSuffix(s.Name, ".bias"):
		case len(s.Shape) == 1:
			for j := range v {
				v[j] = 1
			}
		default:
			std := 0.02
			if hasSuffix(s.Name, "c_proj.weight", "o_proj.weight", "down_proj.weight", "attention.dense.weight", "dense_4h_to_h.weight", "output.dense.weight") {
				std /= math.Sqrt(2 * float64(layers))
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
		if strings.HasSuffix(s, x) {
			return true
		}
	}
	return false
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
