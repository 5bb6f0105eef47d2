package seq2seq

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"
)

// Hyper are the optimisation settings (Text_to_Python: Adam lr 1e−3, gradient
// clipping at norm 1, teacher forcing 0.5).
type Hyper struct {
	LearningRate   float64
	Beta1, Beta2   float64 // 0: 0.9, 0.999
	Eps            float64 // 0: 1e-8
	ClipNorm       float64 // global gradient-norm clip (0: none)
	TeacherForcing float64 // probability that a step is fed the gold token
	Seed           uint64  // teacher-forcing coin flips and dropout
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
}

// Trainer holds a model's weights and Adam state. Adam is torch.optim.Adam
// (Kingma & Ba 2015, no weight decay); gradients are clipped to a global norm as
// torch.nn.utils.clip_grad_norm_ (scale min(1, clip/(‖g‖+1e−6))). The gradients of
// the embeddings' PAD rows are zero (padding_idx=0).
type Trainer struct {
	Config Config
	Hyper  Hyper
	params []*tensors.Tensor
	m, v   []*tensors.Tensor
	rng    *tensors.Tensor
	coins  *rand.Rand
	step   int
	exec   *Exec
	eval   *Exec
}

// NewTrainer starts training from weights (in Config.Params order).
func NewTrainer(backend compute.Backend, cfg Config, h Hyper, w [][]float32) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h.defaults()
	params, err := paramTensors(cfg, w)
	if err != nil {
		return nil, err
	}
	t := &Trainer{Config: cfg, Hyper: h, params: params, coins: rand.New(rand.NewPCG(h.Seed, 0x7f))}
	for _, p := range params {
		t.m = append(t.m, tensors.FromShape(p.Shape()))
		t.v = append(t.v, tensors.FromShape(p.Shape()))
	}
	if t.rng, err = RNGStateFromSeed(int64(h.Seed)); err != nil {
		return nil, fmt.Errorf("seq2seq: %w", err)
	}
	specs := cfg.Params()
	np := len(specs)
	t.exec, err = NewExec(backend, func(in []*Node) []*Node {
		params, m, v := in[:np], in[np:2*np], in[2*np:3*np]
		lr, c1, c2, src, trg, tf, rng := in[3*np], in[3*np+1], in[3*np+2], in[3*np+3], in[3*np+4], in[3*np+5], in[3*np+6]
		d := &dropper{rate: cfg.Dropout, rng: rng}
		logits, _ := cfg.Forward(cfg.bind(params), src, trg, tf, d)
		loss := Loss(logits, trg)
		grads := Gradient(loss, params...)
		for i, s := range specs {
			if s.Bound == 0 { // embedding: no gradient for the PAD row
				rows := Iota(loss.Graph(), shapes.Make(grads[i].DType(), s.Shape...), 0)
				grads[i] = Mul(grads[i], ConvertDType(GreaterThan(rows, ZerosLike(rows)), grads[i].DType()))
			}
		}
		sq := ReduceAllSum(Square(grads[0]))
		for _, g := range grads[1:] {
			sq = Add(sq, ReduceAllSum(Square(g)))
		}
		norm := Sqrt(sq)
		scale := OnesLike(norm)
		if h.ClipNorm > 0 {
			scale = Min(scale, Div(Scalar(norm.Graph(), norm.DType(), h.ClipNorm), AddScalar(norm, 1e-6)))
		}
		out := make([]*Node, 3*np, 3*np+3)
		for i := range params {
			g := Mul(grads[i], scale)
			out[np+i] = Add(MulScalar(m[i], h.Beta1), MulScalar(g, 1-h.Beta1))
			out[2*np+i] = Add(MulScalar(v[i], h.Beta2), MulScalar(Square(g), 1-h.Beta2))
			upd := Div(Mul(out[np+i], c1), AddScalar(Sqrt(Mul(out[2*np+i], c2)), h.Eps))
			out[i] = Sub(params[i], Mul(lr, upd))
		}
		return append(out, loss, norm, d.rng)
	})
	if err != nil {
		return nil, fmt.Errorf("seq2seq: build the training step: %w", err)
	}
	t.eval, err = NewExec(backend, func(in []*Node) []*Node {
		logits, _ := cfg.Forward(cfg.bind(in[:np]), in[np], in[np+1], in[np+2], nil)
		return []*Node{Loss(logits, in[np+1])}
	})
	if err != nil {
		return nil, fmt.Errorf("seq2seq: build the evaluation pass: %w", err)
	}
	return t, nil
}

func paramTensors(cfg Config, w [][]float32) ([]*tensors.Tensor, error) {
	specs := cfg.Params()
	if len(w) != len(specs) {
		return nil, fmt.Errorf("seq2seq: %d weight tensors given, the %s model has %d", len(w), cfg.Kind, len(specs))
	}
	out := make([]*tensors.Tensor, len(specs))
	for i, s := range specs {
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		if len(w[i]) != n {
			return nil, fmt.Errorf("seq2seq: %s has %d values, want shape %v", s.Name, len(w[i]), s.Shape)
		}
		out[i] = tensors.FromFlatDataAndDimensions(append([]float32(nil), w[i]...), s.Shape...)
	}
	return out, nil
}

// Batch is a padded batch: Src [B][S] and Trg [B][T] token ids, SOS first, EOS
// last, PAD (0) after.
type Batch struct{ Src, Trg [][]int }

// Tokens is the number of non-PAD target tokens scored (T−1 steps per row).
func (b Batch) Tokens() int {
	n := 0
	for _, r := range b.Trg {
		for _, id := range r[1:] {
			if id != 0 {
				n++
			}
		}
	}
	return n
}

func (b Batch) check(c Config) error {
	if len(b.Src) == 0 || len(b.Src) != len(b.Trg) {
		return fmt.Errorf("seq2seq: batch of %d sources and %d targets", len(b.Src), len(b.Trg))
	}
	if s := len(b.Src[0]); s > c.MaxSrcLen+2 {
		return fmt.Errorf("seq2seq: sources of %d positions exceed the model's maximum %d (+ SOS and EOS)", s, c.MaxSrcLen)
	}
	if t := len(b.Trg[0]); t < 2 {
		return fmt.Errorf("seq2seq: targets of %d positions: SOS and at least one more expected", t)
	}
	return nil
}

// StepResult reports one optimisation step.
type StepResult struct {
	Step     int
	Loss     float64
	GradNorm float64 // before clipping
}

// Step runs one Adam step on a batch with teacher forcing: each decoding step t ≥ 2
// is fed the gold token with probability TeacherForcing (one coin per step for the
// whole batch, as the original's random.random() < ratio).
func (t *Trainer) Step(ctx context.Context, b Batch) (StepResult, error) {
	if err := ctx.Err(); err != nil {
		return StepResult{}, err
	}
	if err := b.check(t.Config); err != nil {
		return StepResult{}, err
	}
	T := len(b.Trg[0])
	tf := make([]float32, T)
	for i := range tf {
		if t.coins.Float64() < t.Hyper.TeacherForcing {
			tf[i] = 1
		}
	}
	t.step++
	c1 := 1 / (1 - math.Pow(t.Hyper.Beta1, float64(t.step)))
	c2 := 1 / (1 - math.Pow(t.Hyper.Beta2, float64(t.step)))
	args := make([]any, 0, 3*len(t.params)+7)
	for _, group := range [][]*tensors.Tensor{t.params, t.m, t.v} {
		for _, x := range group {
			args = append(args, x)
		}
	}
	args = append(args, tensors.FromScalar(float32(t.Hyper.LearningRate)), tensors.FromScalar(float32(c1)), tensors.FromScalar(float32(c2)),
		IDMatrix(b.Src, t.Config.SrcVocab), IDMatrix(b.Trg, t.Config.TrgVocab), tensors.FromValue(tf), t.rng)
	out, err := t.exec.Call(args...)
	if err != nil {
		return StepResult{}, fmt.Errorf("seq2seq: step %d: %w", t.step, err)
	}
	np := len(t.params)
	for i := range np {
		t.params[i], t.m[i], t.v[i] = out[i], out[np+i], out[2*np+i]
	}
	loss := float64(out[3*np].Value().(float32))
	norm := float64(out[3*np+1].Value().(float32))
	t.rng = out[3*np+2]
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return StepResult{}, fmt.Errorf("seq2seq: step %d: the loss is %v (lower the learning rate)", t.step, loss)
	}
	return StepResult{Step: t.step, Loss: loss, GradNorm: norm}, nil
}

// EvalLoss is the loss on a batch without dropout and without teacher forcing
// (every step fed the previous argmax), as a validation pass with ratio 0.
func (t *Trainer) EvalLoss(ctx context.Context, b Batch) (float64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := b.check(t.Config); err != nil {
		return 0, err
	}
	args := make([]any, 0, len(t.params)+3)
	for _, p := range t.params {
		args = append(args, p)
	}
	args = append(args, IDMatrix(b.Src, t.Config.SrcVocab), IDMatrix(b.Trg, t.Config.TrgVocab), tensors.FromValue(make([]float32, len(b.Trg[0]))))
	out, err := t.eval.Call(args...)
	if err != nil {
		return 0, fmt.Errorf("seq2seq: validation loss: %w", err)
	}
	return float64(out[0].Value().(float32)), nil
}

// IDMatrix packs [B][T] ids into an int32 tensor; ids outside [0, vocab) become UNK
// (3) so that Gather never reads out of range.
func IDMatrix(rows [][]int, vocab int) *tensors.Tensor {
	b, tl := len(rows), len(rows[0])
	flat := make([]int32, 0, b*tl)
	for _, r := range rows {
		for _, v := range r {
			if v < 0 || v >= vocab {
				v = 3
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
			return nil, fmt.Errorf("seq2seq: read %s: %w", t.Config.Params()[i].Name, err)
		}
		out[i] = v
	}
	return out, nil
}

// StepCount returns the number of steps taken.
func (t *Trainer) StepCount() int { return t.step }
