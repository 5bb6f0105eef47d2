// Package train trains small GPT-2 decoders from scratch on GoMLX (pure-Go
// backend by default) and writes them as Hugging Face checkpoints
// (model.safetensors + config.json) that the model runtime and other tools load.
//
// The optimiser is AdamW (Loshchilov & Hutter 2019, torch.optim.AdamW
// semantics: decoupled weight decay on matrices), with global-norm gradient
// clipping and a linear warm-up followed by cosine decay; the loss is
// cross-entropy over positions whose target is not the ignore index, as
// AttentionSpan's training loop.
package train

import (
	"context"
	"fmt"
	"math"
	"os"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/attnscope/attnscope/model"
	"github.com/attnscope/attnscope/model/arch"
)

// Hyper are the optimisation settings.
type Hyper struct {
	LearningRate float64 // peak learning rate
	WarmupSteps  int     // linear warm-up from 0
	TotalSteps   int     // cosine decay to MinLRRatio·LearningRate at TotalSteps (0: constant after warm-up)
	MinLRRatio   float64
	Beta1, Beta2 float64 // AdamW moments (0: 0.9, 0.999)
	Eps          float64 // 0: 1e-8
	WeightDecay  float64 // decoupled, applied to weights of rank ≥ 2
	ClipNorm     float64 // global gradient-norm clip (0: none)
	IgnoreIndex  int
}

func (h *Hyper) defaults() {
	if h.Beta1 == 0 {
		h.Beta1 = 0.9
	}
	if h.Beta2 == 0 {
		h.Beta2 = 0.999
	}
	if h.Eps == 0 {
		h.Eps = 1e-8
	}
	if h.IgnoreIndex == 0 {
		h.IgnoreIndex = -100
	}
}

// LR returns the learning rate of step (1-based): linear warm-up, then cosine
// decay to MinLRRatio of the peak at TotalSteps.
func (h Hyper) LR(step int) float64 {
	if h.WarmupSteps > 0 && step <= h.WarmupSteps {
		return h.LearningRate * float64(step) / float64(h.WarmupSteps)
	}
	if h.TotalSteps <= h.WarmupSteps {
		return h.LearningRate
	}
	frac := float64(step-h.WarmupSteps) / float64(h.TotalSteps-h.WarmupSteps)
	frac = math.Min(frac, 1)
	cos := 0.5 * (1 + math.Cos(math.Pi*frac))
	return h.LearningRate * (h.MinLRRatio + (1-h.MinLRRatio)*cos)
}

// DefaultBackend is the backend training uses when neither the caller nor
// $GOMLX_BACKEND names one: model.DefaultBackend, the pure-Go backend running ops one
// after the other (each op still uses every core), as inference does. (The op-parallel
// mode once deadlocked in this project's training loop with gomlx/compute v0.1.6.)
const DefaultBackend = model.DefaultBackend

// Backend starts the backend named by config ("" = $GOMLX_BACKEND, else
// DefaultBackend) through package model's constructor, the one used for
// inference too.
func Backend(config string) (compute.Backend, error) {
	if config == "" {
		config = DefaultBackend
		if env, ok := os.LookupEnv(compute.ConfigEnvVar); ok {
			config = env
		}
	}
	return model.NewBackend(config)
}

// Trainer holds a model's weights and AdamW state.
type Trainer struct {
	Config ModelConfig // the model's shape (zero for NewArchTrainer)
	Hyper  Hyper
	net    *net
	params []*tensors.Tensor
	m, v   []*tensors.Tensor
	step   int
	exec   *Exec
}

// NewTrainer starts training from the given weights (in Config.Params order).
func NewTrainer(backend compute.Backend, cfg ModelConfig, h Hyper, weights [][]float32) (*Trainer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n, err := cfg.net()
	if err != nil {
		return nil, err
	}
	t, err := newTrainer(backend, n, h, weights)
	if t != nil {
		t.Config = cfg
	}
	return t, err
}

// NewArchTrainer trains a model of any family package model knows (such as a
// loaded checkpoint's config, model.ReadConfig) from weights in Params(c)
// order: the same AdamW step over the family's model/arch graph, with the
// cross-entropy of every position whose target is not the ignore index
// (next tokens for a decoder, masked tokens for an encoder).
func NewArchTrainer(backend compute.Backend, c *arch.Config, h Hyper, weights [][]float32) (*Trainer, error) {
	n, err := newNet(c)
	if err != nil {
		return nil, err
	}
	return newTrainer(backend, n, h, weights)
}

// Params lists the trainable tensors of a model of any family: every Param of
// its architecture (embedding, each layer, final norm, head), each checkpoint
// tensor once.
func Params(c *arch.Config) ([]arch.Param, error) {
	n, err := newNet(c)
	if err != nil {
		return nil, err
	}
	return n.params, nil
}

func newTrainer(backend compute.Backend, n *net, h Hyper, weights [][]float32) (*Trainer, error) {
	h.defaults()
	specs := n.params
	if len(weights) != len(specs) {
		return nil, fmt.Errorf("train: %d weight tensors given, the model has %d", len(weights), len(specs))
	}
	t := &Trainer{Hyper: h, net: n}
	for i, s := range specs {
		if n := numel(s.Shape); len(weights[i]) != n {
			return nil, fmt.Errorf("train: %s has %d values, want %v", s.Name, len(weights[i]), s.Shape)
		}
		t.params = append(t.params, tensors.FromFlatDataAndDimensions(append([]float32(nil), weights[i]...), s.Shape...))
		t.m = append(t.m, tensors.FromFlatDataAndDimensions(make([]float32, numel(s.Shape)), s.Shape...))
		t.v = append(t.v, tensors.FromFlatDataAndDimensions(make([]float32, numel(s.Shape)), s.Shape...))
	}
	decay := make([]bool, len(specs))
	for i, s := range specs {
		decay[i] = len(s.Shape) >= 2
	}
	np := len(specs)
	exec, err := NewExec(backend, func(in []*Node) []*Node {
		params, m, v := in[:np], in[np:2*np], in[2*np:3*np]
		lr, c1, c2 := in[3*np], in[3*np+1], in[3*np+2]
		ids, targets := in[3*np+3], in[3*np+4]
		logits, _ := n.forward(params, ids, false)
		loss, _ := maskedCrossEntropy(logits, targets, h.IgnoreIndex)
		grads := Gradient(loss, params...)
		sq := ReduceAllSum(Square(grads[0]))
		for _, g := range grads[1:] {
			sq = Add(sq, ReduceAllSum(Square(g)))
		}
		norm := Sqrt(sq)
		scale := OnesLike(norm)
		if h.ClipNorm > 0 {
			scale = Min(scale, Div(Scalar(norm.Graph(), norm.DType(), h.ClipNorm), AddScalar(norm, 1e-6)))
		}
		out := make([]*Node, 0, 3*np+2)
		newM := make([]*Node, np)
		newV := make([]*Node, np)
		newP := make([]*Node, np)
		for i := range params {
			g := Mul(grads[i], scale)
			newM[i] = Add(MulScalar(m[i], h.Beta1), MulScalar(g, 1-h.Beta1))
			newV[i] = Add(MulScalar(v[i], h.Beta2), MulScalar(Square(g), 1-h.Beta2))
			p := params[i]
			if decay[i] && h.WeightDecay > 0 {
				p = Sub(p, Mul(MulScalar(lr, h.WeightDecay), p))
			}
			upd := Div(Mul(newM[i], c1), AddScalar(Sqrt(Mul(newV[i], c2)), h.Eps))
			newP[i] = Sub(p, Mul(lr, upd))
		}
		out = append(out, newP...)
		out = append(out, newM...)
		out = append(out, newV...)
		return append(out, loss, norm)
	})
	if err != nil {
		return nil, fmt.Errorf("train: build the training step: %w", err)
	}
	t.exec = exec
	return t, nil
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// StepResult reports one optimisation step.
type StepResult struct {
	Step     int
	Loss     float64
	GradNorm float64 // global gradient norm before clipping, √Σ‖∇p‖²
	LR       float64
}

// Step runs one AdamW step on a right-padded batch (ids and targets [B][T],
// targets with the ignore index where not scored).
func (t *Trainer) Step(ctx context.Context, ids, targets [][]int) (StepResult, error) {
	if err := ctx.Err(); err != nil {
		return StepResult{}, err
	}
	if len(ids) == 0 || len(ids) != len(targets) {
		return StepResult{}, fmt.Errorf("train: batch of %d inputs and %d targets", len(ids), len(targets))
	}
	if mp := t.net.cfg.MaxPositions; mp > 0 && len(ids[0]) > mp {
		return StepResult{}, fmt.Errorf("train: sequences of %d tokens exceed the model's %d positions", len(ids[0]), mp)
	}
	t.step++
	lr := t.Hyper.LR(t.step)
	c1 := 1 / (1 - math.Pow(t.Hyper.Beta1, float64(t.step)))
	c2 := 1 / (1 - math.Pow(t.Hyper.Beta2, float64(t.step)))
	args := make([]any, 0, 3*len(t.params)+5)
	for _, group := range [][]*tensors.Tensor{t.params, t.m, t.v} {
		for _, x := range group {
			args = append(args, x)
		}
	}
	args = append(args, tensors.FromScalar(float32(lr)), tensors.FromScalar(float32(c1)), tensors.FromScalar(float32(c2)),
		matrix(ids, t.net.cfg.VocabSize), matrix(targets, -1))
	out, err := t.exec.Call(args...)
	if err != nil {
		return StepResult{}, fmt.Errorf("train: step %d: %w", t.step, err)
	}
	np := len(t.params)
	for i := 0; i < np; i++ {
		t.params[i], t.m[i], t.v[i] = out[i], out[np+i], out[2*np+i]
	}
	loss := float64(out[3*np].Value().(float32))
	norm := float64(out[3*np+1].Value().(float32))
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return StepResult{}, fmt.Errorf("train: step %d: the loss is %v (lower the learning rate)", t.step, loss)
	}
	return StepResult{Step: t.step, Loss: loss, GradNorm: norm, LR: lr}, nil
}

// matrix packs [B][T] ints into an int32 tensor; vocab > 0 clamps ids into
// [0, vocab) (padding positions are never scored).
func matrix(rows [][]int, vocab int) *tensors.Tensor {
	b, tl := len(rows), len(rows[0])
	flat := make([]int32, 0, b*tl)
	for _, r := range rows {
		for _, v := range r {
			if vocab > 0 && (v < 0 || v >= vocab) {
				v = 0
			}
			flat = append(flat, int32(v))
		}
	}
	return tensors.FromFlatDataAndDimensions(flat, b, tl)
}

// Weights returns a copy of the current weights in Config.Params order.
func (t *Trainer) Weights() ([][]float32, error) {
	out := make([][]float32, len(t.params))
	for i, p := range t.params {
		v, err := tensors.CopyFlatData[float32](p)
		if err != nil {
			return nil, fmt.Errorf("train: read %s: %w", t.net.params[i].Name, err)
		}
		out[i] = v
	}
	return out, nil
}

// StepCount returns the number of steps taken.
func (t *Trainer) StepCount() int { return t.step }
