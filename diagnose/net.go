// Package diagnose computes the gradient and representation diagnostics of
// BERT-non-text (Chiang & Lee 2020, "Pre-Training a Language Model Without
// Human Language"; github.com/sky1456723/BERT-non-text, analysis/negative):
// output–input Jacobian singular values (dynamical isometry, Pennington et al.
// 2017), gradient confusion between mini-batches (Sankararaman et al. 2020),
// the output change under parameter noise, and the standard deviation of the
// residual sums entering BERT's LayerNorms.
//
// Every diagnostic builds its graph from package model/arch, the one
// architecture definition inference and training share, over a Net: a
// checkpoint's weights or the same architecture freshly initialised with a
// seed ("scratch"), in evaluation mode (dropout off) or training mode
// (dropout on, seeded).
package diagnose

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/model/arch"
)

// Net is one model's architecture with its weights as host arrays: the
// embedding, every layer, the final norm and, when present or asked for, the
// sequence-classification head. The MLM/LM head is not kept: no diagnostic
// uses it.
type Net struct {
	Cfg    *arch.Config
	A      arch.Architecture
	Params []arch.Param // each checkpoint name once, in the order embed, layers, final, classifier
	Values [][]float32  // Values[i] holds Params[i], row-major
	// Source is the model folder, or "scratch" for a fresh initialisation.
	Source string
	// Seed is the initialisation seed of a scratch model (and of a classifier
	// head initialised for a checkpoint without one).
	Seed uint64
	// Labels is the number of outputs of the classification head (0: none).
	Labels int
	// HeadInitialised reports that the classification head was drawn from Seed
	// because the checkpoint has none.
	HeadInitialised bool

	index map[string]int
}

func newNet(cfg *arch.Config) (*Net, error) {
	a, err := model.Architecture(cfg)
	if err != nil {
		return nil, err
	}
	n := &Net{Cfg: cfg, A: a, index: map[string]int{}}
	n.add(a.EmbedParams())
	for l := range cfg.Layers {
		n.add(a.LayerParams(l))
	}
	n.add(a.FinalParams())
	return n, nil
}

func (n *Net) add(ps []arch.Param) {
	for _, p := range ps {
		if _, ok := n.index[p.Name]; !ok {
			n.index[p.Name] = len(n.Params)
			n.Params = append(n.Params, p)
			n.Values = append(n.Values, nil)
		}
	}
}

// HeadOptions says whether a sequence-classification head is needed.
type HeadOptions struct {
	// Labels is the number of outputs the head must have (0: no head needed).
	Labels int
	// InitMissing draws a head absent from the checkpoint from the seed (as
	// transformers' from_pretrained does for BertForSequenceClassification
	// built on a BertForMaskedLM checkpoint) instead of refusing the model.
	InitMissing bool
	// Seed draws a missing head.
	Seed uint64
}

// LoadNet reads a model folder's config.json and weights (model.safetensors or
// a sharded index); with head.Labels > 0 also its classification head
// (bert.pooler.*, classifier.*). A checkpoint without the head is refused with
// an error naming the missing tensor unless head.InitMissing.
func LoadNet(dir string, head HeadOptions) (*Net, error) {
	cfg, err := model.ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	n, err := newNet(cfg)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, "config.json"), err)
	}
	n.Source = dir
	w, err := checkpoint.OpenWeights(dir)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if head.Labels > 0 {
		c, ok := n.A.(arch.Classifier)
		if !ok {
			return nil, fmt.Errorf("model %s: the %s family has no sequence-classification head (needed here)", dir, cfg.ModelType)
		}
		ps := c.ClassifierParams(head.Labels)
		n.add(ps)
		n.Labels = head.Labels
		var missing []string
		for _, p := range ps {
			if !w.Has(p.Name) {
				missing = append(missing, p.Name)
			}
		}
		switch {
		case len(missing) == len(ps) && head.InitMissing:
			n.HeadInitialised, n.Seed = true, head.Seed
			init := InitBERT(ps, cfg, head.Seed)
			for i, p := range ps {
				n.Values[n.index[p.Name]] = init[i]
			}
		case len(missing) > 0:
			return nil, fmt.Errorf("model %s has no sequence-classification head: tensor %s is missing from %s (a %s checkpoint; pass --init-head to draw the head from the seed, as transformers does)",
				dir, missing[0], strings.Join(w.Files(), ", "), strings.Join(cfg.Architectures, ", "))
		}
	}
	for i, p := range n.Params {
		if n.Values[i] != nil {
			continue
		}
		if n.Values[i], err = w.Float32(p.Name, p.Shape); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// ScratchNet is the architecture of cfg freshly initialised from seed
// (InitBERT), with a classification head of labels outputs when labels > 0.
func ScratchNet(cfg *arch.Config, labels int, seed uint64) (*Net, error) {
	n, err := newNet(cfg)
	if err != nil {
		return nil, err
	}
	n.Source, n.Seed = "scratch", seed
	if labels > 0 {
		c, ok := n.A.(arch.Classifier)
		if !ok {
			return nil, fmt.Errorf("the %s family has no sequence-classification head (needed here)", cfg.ModelType)
		}
		n.add(c.ClassifierParams(labels))
		n.Labels = labels
	}
	copy(n.Values, InitBERT(n.Params, cfg, seed))
	return n, nil
}

// InitBERT draws transformers' BertPreTrainedModel._init_weights: N(0,
// initializer_range²) (default 0.02) for every matrix and embedding, zeros for
// biases, ones for LayerNorm gains, and a zero row for the padding id of the
// word embeddings (nn.Embedding(padding_idx=pad_token_id)). The generator is
// Go's PCG seeded with seed, so a seed gives the same model on every machine
// (not PyTorch's stream).
func InitBERT(ps []arch.Param, cfg *arch.Config, seed uint64) [][]float32 {
	std := 0.02
	if v, ok := cfg.Raw["initializer_range"]; ok {
		_ = jsonNumber(v, &std)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5851f42d4c957f2d))
	out := make([][]float32, len(ps))
	for i, p := range ps {
		size := 1
		for _, d := range p.Shape {
			size *= d
		}
		v := make([]float32, size)
		switch {
		case strings.HasSuffix(p.Name, ".bias"):
		case len(p.Shape) == 1:
			for j := range v {
				v[j] = 1
			}
		default:
			for j := range v {
				v[j] = float32(rng.NormFloat64() * std)
			}
			if strings.HasSuffix(p.Name, "word_embeddings.weight") && cfg.PadTokenID != nil && *cfg.PadTokenID >= 0 && *cfg.PadTokenID < p.Shape[0] {
				clear(v[*cfg.PadTokenID*p.Shape[1] : (*cfg.PadTokenID+1)*p.Shape[1]])
			}
		}
		out[i] = v
	}
	return out
}

// NumParams is the number of scalar weights.
func (n *Net) NumParams() int {
	t := 0
	for _, v := range n.Values {
		t += len(v)
	}
	return t
}

// weights maps a part's Params to the nodes of the parameters.
func (n *Net) weights(ps []arch.Param, nodes []*Node) arch.Weights {
	w := make(arch.Weights, len(ps))
	for _, p := range ps {
		w[p.Key] = nodes[n.index[p.Name]]
	}
	return w
}

// paramTensors packs the weights as backend tensors of dtype.
func (n *Net) paramTensors(dt dtypes.DType) []*tensors.Tensor {
	out := make([]*tensors.Tensor, len(n.Params))
	for i, p := range n.Params {
		if dt == dtypes.Float64 {
			v := make([]float64, len(n.Values[i]))
			for j, x := range n.Values[i] {
				v[j] = float64(x)
			}
			out[i] = tensors.FromFlatDataAndDimensions(v, p.Shape...)
		} else {
			out[i] = tensors.FromFlatDataAndDimensions(append([]float32(nil), n.Values[i]...), p.Shape...)
		}
	}
	return out
}

// Mode is evaluation (dropout off) or training (dropout on).
type Mode struct {
	Train bool
	// Seed seeds the dropout masks in training mode.
	Seed uint64
}

// String states the mode as outputs record it.
func (m Mode) String() string {
	if m.Train {
		return "train (dropout on)"
	}
	return "eval (dropout off)"
}

// graphIn are the per-call inputs of a diagnostic graph besides the weights.
type graphIn struct {
	ids, types, positions *Node // [B, T] int32
	mask                  *Node // [B, T, T] bool: query i may attend key j
	rng                   *Node // RNG state (training mode), nil otherwise
}

// dropout returns the training-mode dropout of the graph (inverted dropout:
// kept values scaled by 1/(1−rate), as torch.nn.Dropout), drawing from
// *state; nil in evaluation mode.
func dropout(state **Node) arch.DropoutFunc {
	if state == nil || *state == nil {
		return nil
	}
	return func(x *Node, rate float64) *Node {
		if rate <= 0 {
			return x
		}
		var u *Node
		*state, u = RandomUniform(*state, x.Shape())
		keep := GreaterOrEqual(u, Scalar(x.Graph(), x.DType(), rate))
		return Where(keep, DivScalar(x, 1-rate), ZerosLike(x))
	}
}

// embed is hidden_states[0]: the embedding output after the embedding dropout.
func (n *Net) embed(params []*Node, in graphIn, drop arch.DropoutFunc) *Node {
	x := n.A.Embed(n.weights(n.A.EmbedParams(), params), in.ids, in.types, in.positions)
	if drop != nil {
		x = drop(x, n.Cfg.HiddenDropout)
	}
	return x
}

// encode runs every block over x [B, T, width] and applies the final norm:
// transformers' last_hidden_state. each (nil: none) sees every block's outputs.
func (n *Net) encode(params []*Node, x, mask *Node, drop arch.DropoutFunc, each func(l int, o arch.BlockOutputs)) *Node {
	ai := arch.AttentionInputs{Mask: mask, Dropout: drop}
	if rot := n.A.RotaryDim(); rot > 0 {
		t := x.Shape().Dimensions[1]
		pos := make([]int, t)
		for i := range pos {
			pos[i] = i
		}
		cos, sin := arch.RopeTables(pos, rot, n.A.RopeTheta())
		g := x.Graph()
		ai.Cos = ConvertDType(Reshape(Const(g, cos), t, rot), x.DType())
		ai.Sin = ConvertDType(Reshape(Const(g, sin), t, rot), x.DType())
	}
	for l := range n.Cfg.Layers {
		o := n.A.Block(n.weights(n.A.LayerParams(l), params), x, ai)
		if each != nil {
			each(l, o)
		}
		x = o.Out
	}
	return n.A.FinalNorm(n.weights(n.A.FinalParams(), params), x)
}

// paddedMask is the [B, T, T] mask over real keys: key j is visible to every
// query when j < lens[b] (a right-padded batch; causal families also hide
// later keys). Padded query rows see key 0 so that their softmax is defined.
func paddedMask(lens []int, t int, causal bool) *tensors.Tensor {
	m := make([]bool, len(lens)*t*t)
	for b, n := range lens {
		for i := range t {
			for j := range t {
				ok := j < n
				if causal {
					ok = ok && j <= i
				}
				if i >= n && j == 0 {
					ok = true
				}
				m[(b*t+i)*t+j] = ok
			}
		}
	}
	return tensors.FromFlatDataAndDimensions(m, len(lens), t, t)
}

// int32Rows packs rows (zero-padded to t) as [len(rows), t] int32.
func int32Rows(rows [][]int, t int) *tensors.Tensor {
	out := make([]int32, len(rows)*t)
	for b, r := range rows {
		for i := range min(t, len(r)) {
			out[b*t+i] = int32(r[i])
		}
	}
	return tensors.FromFlatDataAndDimensions(out, len(rows), t)
}

// positionRows is [B, t] of 0..t−1.
func positionRows(b, t int) *tensors.Tensor {
	rows := make([][]int, b)
	for i := range rows {
		rows[i] = make([]int, t)
		for j := range t {
			rows[i][j] = j
		}
	}
	return int32Rows(rows, t)
}

// rngTensor is a GoMLX RNG state seeded from seed and a counter, so that
// every call of a training-mode graph draws fresh, reproducible masks.
func rngTensor(seed, counter uint64) (*tensors.Tensor, error) {
	return RNGStateFromSeed(int64(seed*0x9e3779b97f4a7c15 + counter))
}

// padLen rounds a length up to a multiple of 16 (at most limit, and never
// below n), so that a run compiles few graphs.
func padLen(n, limit int) int {
	t := (n + 15) / 16 * 16
	if limit > 0 && t > limit {
		t = max(limit, n)
	}
	return t
}

// backendOf returns a backend (empty config: model.DefaultBackend or $GOMLX_BACKEND).
func backendOf(config string) (compute.Backend, error) { return model.NewBackend(config) }

// jsonNumber decodes a JSON number into dst.
func jsonNumber(v []byte, dst *float64) error { return json.Unmarshal(v, dst) }

// readConfig reads dir/config.json through package model's family registry.
func readConfig(dir string) (*arch.Config, error) { return model.ReadConfig(dir) }
