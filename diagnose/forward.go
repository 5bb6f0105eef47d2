package diagnose

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/attnscope/attnscope/model/arch"
)

// batchExec is one graph over a padded batch: the weights (graph inputs, so
// that they can be perturbed between calls), ids, types, positions, mask and,
// in training mode, an RNG state.
type batchExec struct {
	net   *Net
	mode  Mode
	exec  *Exec
	calls uint64
}

// newBatchExec compiles build over a batch (per shape on first call).
func newBatchExec(n *Net, mode Mode, backend string, build func(params []*Node, gi graphIn, drop arch.DropoutFunc) []*Node) (*batchExec, error) {
	be, err := backendOf(backend)
	if err != nil {
		return nil, err
	}
	np := len(n.Params)
	e, err := NewExec(be, func(in []*Node) []*Node {
		rest := in[np:]
		gi := graphIn{ids: rest[0], types: rest[1], positions: rest[2], mask: rest[3]}
		var state *Node
		if mode.Train {
			state = rest[4]
		}
		return build(in[:np], gi, dropout(&state))
	})
	if err != nil {
		return nil, err
	}
	return &batchExec{net: n, mode: mode, exec: e}, nil
}

func (b *batchExec) close() {
	if b.exec != nil {
		b.exec.Finalize()
		b.exec = nil
	}
}

// call runs the graph on examples padded to length t (t = 0: the longest,
// rounded up to 16), with params as the weights.
func (b *batchExec) call(params []*tensors.Tensor, exs []Example, t int) ([]*tensors.Tensor, error) {
	if len(exs) == 0 {
		return nil, errors.New("empty batch")
	}
	ids, types, lens := make([][]int, len(exs)), make([][]int, len(exs)), make([]int, len(exs))
	longest := 0
	for i, ex := range exs {
		if err := checkExample(b.net, ex); err != nil {
			return nil, fmt.Errorf("example %d of the batch: %w", i, err)
		}
		ids[i], types[i], lens[i] = ex.IDs, ex.TypeIDs, len(ex.IDs)
		longest = max(longest, len(ex.IDs))
	}
	if t < longest {
		t = padLen(longest, b.net.Cfg.MaxPositions)
	}
	in := []*tensors.Tensor{int32Rows(ids, t), int32Rows(types, t), positionRows(len(exs), t), paddedMask(lens, t, b.net.A.Causal())}
	if b.mode.Train {
		rng, err := rngTensor(b.mode.Seed, b.calls)
		if err != nil {
			return nil, err
		}
		in = append(in, rng)
	}
	b.calls++
	defer finalize(in)
	args := make([]any, 0, len(params)+len(in))
	for _, p := range params {
		args = append(args, p)
	}
	for _, x := range in {
		args = append(args, x)
	}
	out, err := b.exec.Call(args...)
	if err != nil {
		return nil, fmt.Errorf("diagnostic graph: %w", err)
	}
	return out, nil
}

// LayerNormStd is, for every layer and every token of a batch (padding
// included, as BERT-non-text's Lipschitz.py), the unbiased standard deviation
// over the width of the two residual sums entering the layer's LayerNorms:
// attention sub-layer x + Attn(x) (hook blocks.<l>.hook_attn_preln) and MLP
// sub-layer x + FFN(x) (blocks.<l>.hook_mlp_preln). Result [layers, 2, B·T]
// (index 0: attention, 1: MLP), T the padded length.
type LayerNormStd struct {
	net    *Net
	params []*tensors.Tensor
	b      *batchExec
}

// NewLayerNormStd prepares the graph; the family must be post-norm (BERT).
func NewLayerNormStd(n *Net, mode Mode, backend string) (*LayerNormStd, error) {
	l := &LayerNormStd{net: n}
	var err error
	l.b, err = newBatchExec(n, mode, backend, func(params []*Node, gi graphIn, drop arch.DropoutFunc) []*Node {
		var outs []*Node
		x := n.embed(params, gi, drop)
		n.encode(params, x, gi.mask, drop, func(_ int, o arch.BlockOutputs) {
			if o.AttnPreLN == nil {
				panic(fmt.Sprintf("the %s family has no LayerNorm inside its residual stream (pre-norm)", n.Cfg.ModelType))
			}
			outs = append(outs, tokenStd(o.AttnPreLN), tokenStd(o.MLPPreLN))
		})
		return []*Node{Stack(outs, 0)}
	})
	if err != nil {
		return nil, err
	}
	l.params = n.paramTensors(dtypes.Float32)
	return l, nil
}

// tokenStd is the unbiased std over the last axis of x [B, T, d] → [B·T].
func tokenStd(x *Node) *Node {
	d := x.Shape().Dimensions
	mean := ReduceAndKeep(x, ReduceMean, -1)
	v := DivScalar(ReduceSum(Square(Sub(x, mean)), -1), float64(d[2]-1))
	return Reshape(Sqrt(v), d[0]*d[1])
}

// Batch returns [layers, 2, B·t] for the examples padded to t tokens.
func (l *LayerNormStd) Batch(exs []Example, t int) ([]float64, []int, error) {
	if l.net.A.Causal() || l.net.Cfg.ModelType != "bert" {
		return nil, nil, fmt.Errorf("layernorm: the %s family has no LayerNorm inside its residual stream (BERT's post-norm blocks are needed)", l.net.Cfg.ModelType)
	}
	out, err := l.b.call(l.params, exs, t)
	if err != nil {
		return nil, nil, err
	}
	defer finalize(out)
	var v []float64
	err = readGrad(out[0], func(x []float64) { v = append([]float64(nil), x...) })
	return v, out[0].Shape().Dimensions, err
}

// Close releases the graph and weights.
func (l *LayerNormStd) Close() { l.b.close(); finalize(l.params) }

// Perturbation measures how far the last layer's first-token vector moves
// when every parameter gets Gaussian noise (BERT-non-text's perturbation.py):
// o₁ = Y[:,0,:] with the clean weights, o₂ with θ + ε, ε ~ N(0, σ²) drawn
// afresh for every batch, and ‖o₁ − o₂‖₂ per example. In training mode the
// two passes draw independent dropout masks, as in the original. The original
// draws the noise of successive batches from one torch generator; here batch b
// draws from its own ChaCha8 stream keyed by (seed, b), so that any subset of
// the batches (a shard, a resumed run) is computed as in the whole run.
type Perturbation struct {
	net   *Net
	clean []*tensors.Tensor
	b     *batchExec
	seed  uint64
	Sigma float64
}

// NewPerturbation prepares the graph; noise comes from streams keyed by seed.
func NewPerturbation(n *Net, mode Mode, backend string, sigma float64, seed uint64) (*Perturbation, error) {
	if sigma < 0 || math.IsNaN(sigma) {
		return nil, fmt.Errorf("perturb: --std %g is not a non-negative number", sigma)
	}
	p := &Perturbation{net: n, Sigma: sigma, seed: seed}
	var err error
	p.b, err = newBatchExec(n, mode, backend, func(params []*Node, gi graphIn, drop arch.DropoutFunc) []*Node {
		y := n.encode(params, n.embed(params, gi, drop), gi.mask, drop, nil)
		return []*Node{Squeeze(SliceAxis(y, 1, AxisRange(0, 1)), 1)}
	})
	if err != nil {
		return nil, err
	}
	p.clean = n.paramTensors(dtypes.Float32)
	return p, nil
}

// noise is the stream of batch b's parameter noise.
func (p *Perturbation) noise(b int) *rand.Rand {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[0:], p.seed)
	binary.LittleEndian.PutUint64(key[8:], uint64(b))
	binary.LittleEndian.PutUint64(key[16:], 0x2545f4914f6cdd1d) // tags the perturbation's streams
	return rand.New(rand.NewChaCha8(key))
}

// Batch returns ‖o₁ − o₂‖₂ for each example of batch b (its index in the run:
// it keys the noise and, in training mode, the dropout masks).
func (p *Perturbation) Batch(exs []Example, batch int) ([]float64, error) {
	p.b.calls = 2 * uint64(batch)
	rng := p.noise(batch)
	o1, err := p.b.call(p.clean, exs, 0)
	if err != nil {
		return nil, err
	}
	defer finalize(o1)
	noisy := make([]*tensors.Tensor, len(p.net.Params))
	for i, prm := range p.net.Params {
		v := make([]float32, len(p.net.Values[i]))
		for j, x := range p.net.Values[i] {
			v[j] = float32(float64(x) + p.Sigma*rng.NormFloat64())
		}
		noisy[i] = tensors.FromFlatDataAndDimensions(v, prm.Shape...)
	}
	defer finalize(noisy)
	o2, err := p.b.call(noisy, exs, 0)
	if err != nil {
		return nil, err
	}
	defer finalize(o2)
	a, err := tensors.CopyFlatData[float32](o1[0])
	if err != nil {
		return nil, err
	}
	b, err := tensors.CopyFlatData[float32](o2[0])
	if err != nil {
		return nil, err
	}
	d := p.net.Cfg.Hidden
	out := make([]float64, len(exs))
	for i := range exs {
		s := 0.0
		for k := range d {
			x := float64(a[i*d+k]) - float64(b[i*d+k])
			s += x * x
		}
		out[i] = math.Sqrt(s)
	}
	return out, nil
}

// Close releases the graph and weights.
func (p *Perturbation) Close() { p.b.close(); finalize(p.clean) }

// Gradients computes the gradient of the sequence-classification loss with
// respect to every parameter, flattened into one vector (BERT-non-text's
// gradient_confusion.py): cross-entropy over the labels for classification,
// mean squared error for regression (one output), averaged over the batch as
// transformers' BertForSequenceClassification does.
type Gradients struct {
	net    *Net
	params []*tensors.Tensor
	exec   *Exec
	mode   Mode
	calls  uint64
	dt     dtypes.DType
	loss   float64 // of the last batch
}

// NewGradients prepares the graph; the Net needs a classification head.
func NewGradients(n *Net, mode Mode, backend string) (*Gradients, error) {
	return newGradients(n, mode, backend, dtypes.Float32)
}

func newGradients(n *Net, mode Mode, backend string, dt dtypes.DType) (*Gradients, error) {
	c, ok := n.A.(arch.Classifier)
	if !ok || n.Labels == 0 {
		return nil, fmt.Errorf("confusion: model %s has no sequence-classification head (load it with a number of labels)", n.Source)
	}
	be, err := backendOf(backend)
	if err != nil {
		return nil, err
	}
	np := len(n.Params)
	g := &Gradients{net: n, mode: mode, dt: dt}
	g.exec, err = NewExec(be, func(in []*Node) []*Node {
		params, rest := in[:np], in[np:]
		gi := graphIn{ids: rest[0], types: rest[1], positions: rest[2], mask: rest[3]}
		labels := rest[4]
		var state *Node
		if mode.Train {
			state = rest[5]
		}
		drop := dropout(&state)
		y := n.encode(params, n.embed(params, gi, drop), gi.mask, drop, nil)
		logits := c.Classify(n.weights(c.ClassifierParams(n.Labels), params), y, drop)
		var loss *Node
		if n.Labels == 1 {
			loss = ReduceAllMean(Square(Sub(Squeeze(logits, 1), labels)))
		} else {
			lsm := LogSoftmax(logits)
			oh := OneHot(ConvertDType(labels, dtypes.Int32), n.Labels, logits.DType())
			loss = Neg(ReduceAllMean(ReduceSum(Mul(lsm, oh), -1)))
		}
		return append([]*Node{loss}, Gradient(loss, params...)...)
	})
	if err != nil {
		return nil, err
	}
	g.params = n.paramTensors(dt)
	return g, nil
}

// Batch returns the flattened gradient (parameters in Net order).
func (g *Gradients) Batch(exs []Example) ([]float64, error) {
	n := g.net
	ids, types, lens := make([][]int, len(exs)), make([][]int, len(exs)), make([]int, len(exs))
	labels := make([]float32, len(exs))
	longest := 0
	for i, ex := range exs {
		if err := checkExample(n, ex); err != nil {
			return nil, fmt.Errorf("example %d of the batch: %w", i, err)
		}
		if n.Labels > 1 && (ex.Label < 0 || ex.Label >= float64(n.Labels) || ex.Label != math.Trunc(ex.Label)) {
			return nil, fmt.Errorf("example %d of the batch: label %g is not a class of the %d-label head", i, ex.Label, n.Labels)
		}
		ids[i], types[i], lens[i], labels[i] = ex.IDs, ex.TypeIDs, len(ex.IDs), float32(ex.Label)
		longest = max(longest, len(ex.IDs))
	}
	t := padLen(longest, n.Cfg.MaxPositions)
	lab := tensors.FromFlatDataAndDimensions(labels, len(exs))
	if g.dt == dtypes.Float64 {
		l64 := make([]float64, len(labels))
		for i, x := range labels {
			l64[i] = float64(x)
		}
		lab = tensors.FromFlatDataAndDimensions(l64, len(exs))
	}
	in := []*tensors.Tensor{int32Rows(ids, t), int32Rows(types, t), positionRows(len(exs), t), paddedMask(lens, t, n.A.Causal()), lab}
	if g.mode.Train {
		rng, err := rngTensor(g.mode.Seed, g.calls)
		if err != nil {
			return nil, err
		}
		in = append(in, rng)
	}
	g.calls++
	defer finalize(in)
	args := make([]any, 0, len(g.params)+len(in))
	for _, p := range g.params {
		args = append(args, p)
	}
	for _, x := range in {
		args = append(args, x)
	}
	out, err := g.exec.Call(args...)
	if err != nil {
		return nil, fmt.Errorf("gradient graph: %w", err)
	}
	defer finalize(out)
	if err := readGrad(out[0], func(v []float64) { g.loss = v[0] }); err != nil {
		return nil, err
	}
	flat := make([]float64, 0, n.NumParams())
	for _, o := range out[1:] {
		if err := readGrad(o, func(v []float64) { flat = append(flat, v...) }); err != nil {
			return nil, err
		}
	}
	return flat, nil
}

// Close releases the graph and weights.
func (g *Gradients) Close() {
	if g.exec != nil {
		g.exec.Finalize()
		g.exec = nil
	}
	finalize(g.params)
}

// PairStats are the pairwise comparisons of gradient vectors g_t, g_t' (t <
// t', in the order (0,1), (0,2), …, (1,2), …): cosine ⟨g,g'⟩/(‖g‖‖g'‖), dot
// ⟨g,g'⟩ and l2 ‖g − g'‖₂ (gradient confusion, Sankararaman et al. 2020).
type PairStats struct {
	I, J              []int
	Cosine, Dot, Dist []float64
}

// ComparePairs computes PairStats for every pair of gs (T(T−1)/2 pairs).
func ComparePairs(gs [][]float64) PairStats {
	var s PairStats
	norms := make([]float64, len(gs))
	for i, g := range gs {
		norms[i] = math.Sqrt(dot(g, g))
	}
	for i := range gs {
		for j := i + 1; j < len(gs); j++ {
			d := dot(gs[i], gs[j])
			l2 := 0.0
			for k := range gs[i] {
				x := gs[i][k] - gs[j][k]
				l2 += x * x
			}
			s.I, s.J = append(s.I, i), append(s.J, j)
			s.Dot = append(s.Dot, d)
			s.Cosine = append(s.Cosine, d/(norms[i]*norms[j]))
			s.Dist = append(s.Dist, math.Sqrt(l2))
		}
	}
	return s
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
