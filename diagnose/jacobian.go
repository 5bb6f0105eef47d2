package diagnose

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"
	"gonum.org/v1/gonum/mat"
)

// JacobianOptions configure a Jacobians computation.
type JacobianOptions struct {
	Mode Mode
	// Chunk is the number of output coordinates differentiated per reverse
	// pass (the graph holds Chunk copies of one example's activations);
	// 0 means min(width, 32).
	Chunk int
	// DType is the compute type: float32 (default) or float64 (checks).
	DType dtypes.DType
	// Backend is a GoMLX backend config ("" : model.DefaultBackend).
	Backend string
}

// Jacobians computes output–input Jacobians of one Net (dynamical isometry,
// BERT-non-text's dynamical_isometry.py): for an example of n tokens with
// embedding output E = hidden_states[0] (n×d) and last hidden state Y (n×d),
// and an output position p, the blocks J_w[a,b] = ∂Y[p,a]/∂E[w,b] for every
// input position w. Reverse-mode autodiff through the model/arch graph gives
// ∂Y[p,a]/∂E for Chunk coordinates a at a time: the example is replicated
// Chunk times along the batch axis and the gradient of Σ_j Y_j[p, a0+j] with
// respect to the replicated E holds one coordinate per copy, so memory is
// bounded by Chunk copies of one forward pass whatever the width.
type Jacobians struct {
	net     *Net
	opts    JacobianOptions
	backend compute.Backend
	params  []*tensors.Tensor
	exec    *Exec
	calls   uint64
}

// NewJacobians prepares the graph (compiled per padded length on first use).
func NewJacobians(net *Net, opts JacobianOptions) (*Jacobians, error) {
	if opts.DType == dtypes.InvalidDType {
		opts.DType = dtypes.Float32
	}
	if opts.Chunk <= 0 {
		opts.Chunk = min(net.Cfg.Hidden, 32)
	}
	be, err := backendOf(opts.Backend)
	if err != nil {
		return nil, err
	}
	j := &Jacobians{net: net, opts: opts, backend: be, params: net.paramTensors(opts.DType)}
	np := len(j.params)
	j.exec, err = NewExec(be, func(in []*Node) *Node {
		params, rest := in[:np], in[np:]
		gi := graphIn{ids: rest[0], types: rest[1], positions: rest[2], mask: rest[3]}
		sel := rest[4]
		var state *Node
		if opts.Mode.Train {
			state = rest[5]
		}
		drop := sharedDropout(&state)
		e := net.embed(params, gi, drop)
		d := sel.Shape().Dimensions
		eb := BroadcastToDims(e, d...)
		y := net.encode(params, eb, gi.mask, drop, nil)
		loss := ReduceAllSum(Mul(y, sel))
		return Gradient(loss, eb)[0]
	})
	if err != nil {
		return nil, err
	}
	return j, nil
}

// sharedDropout is dropout whose mask is drawn once for batch element 0 and
// shared by the whole batch (the replicated copies of one example must see the
// same mask: one forward pass of the original); nil in evaluation mode.
func sharedDropout(state **Node) func(x *Node, rate float64) *Node {
	if *state == nil {
		return nil
	}
	return func(x *Node, rate float64) *Node {
		if rate <= 0 {
			return x
		}
		one := x.Shape().Clone()
		one.Dimensions[0] = 1
		var u *Node
		*state, u = RandomUniform(*state, one)
		keep := BroadcastToDims(GreaterOrEqual(u, Scalar(x.Graph(), x.DType(), rate)), x.Shape().Dimensions...)
		return Where(keep, DivScalar(x, 1-rate), ZerosLike(x))
	}
}

// Close releases the compiled graphs and weights.
func (j *Jacobians) Close() {
	if j.exec != nil {
		j.exec.Finalize()
		j.exec = nil
	}
	finalize(j.params)
	j.params = nil
}

func finalize(ts []*tensors.Tensor) {
	for _, t := range ts {
		if t != nil {
			t.FinalizeAll()
		}
	}
}

// Full returns the Jacobian of example ex at output position p as J[a][w][b]
// = ∂Y[p,a]/∂E[w,b], flat [d, n, d] (n = len(ex.IDs), d = width). In training
// mode the dropout masks are drawn once for the example (every chunk sees the
// same forward pass).
func (j *Jacobians) Full(ex Example, p int) ([]float64, error) {
	n, d := len(ex.IDs), j.net.Cfg.Hidden
	if j.exec == nil {
		return nil, errors.New("jacobians: closed")
	}
	if n == 0 {
		return nil, errors.New("example has no tokens")
	}
	if p < 0 || p >= n {
		return nil, fmt.Errorf("output position %d is outside the example's %d tokens", p, n)
	}
	if err := checkExample(j.net, ex); err != nil {
		return nil, err
	}
	t := padLen(n, j.net.Cfg.MaxPositions)
	k := j.opts.Chunk
	types := ex.TypeIDs
	ids, tt, pos := int32Rows([][]int{ex.IDs}, t), int32Rows([][]int{types}, t), positionRows(1, t)
	lens := make([]int, k)
	for i := range lens {
		lens[i] = n
	}
	mask := paddedMask(lens, t, j.net.A.Causal())
	defer finalize([]*tensors.Tensor{ids, tt, pos, mask})
	var rng *tensors.Tensor
	if j.opts.Mode.Train {
		var err error
		if rng, err = rngTensor(j.opts.Mode.Seed, j.calls); err != nil {
			return nil, err
		}
		defer rng.FinalizeAll()
	}
	j.calls++
	out := make([]float64, d*n*d)
	for a0 := 0; a0 < d; a0 += k {
		sel := j.selector(k, t, d, p, a0)
		args := make([]any, 0, len(j.params)+6)
		for _, w := range j.params {
			args = append(args, w)
		}
		args = append(args, ids, tt, pos, mask, sel)
		if rng != nil {
			args = append(args, rng)
		}
		res, err := j.exec.Call(args...)
		sel.FinalizeAll()
		if err != nil {
			return nil, fmt.Errorf("jacobian graph: %w", err)
		}
		g := res[0]
		err = readGrad(g, func(v []float64) {
			for r := range min(k, d-a0) {
				a := a0 + r
				for w := range n {
					copy(out[(a*n+w)*d:(a*n+w+1)*d], v[(r*t+w)*d:(r*t+w+1)*d])
				}
			}
		})
		g.FinalizeAll()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// selector is the cotangent [k, t, d]: copy r selects output coordinate a0+r
// at position p (rows beyond d stay zero).
func (j *Jacobians) selector(k, t, d, p, a0 int) *tensors.Tensor {
	if j.opts.DType == dtypes.Float64 {
		v := make([]float64, k*t*d)
		for r := range min(k, d-a0) {
			v[(r*t+p)*d+a0+r] = 1
		}
		return tensors.FromFlatDataAndDimensions(v, k, t, d)
	}
	v := make([]float32, k*t*d)
	for r := range min(k, d-a0) {
		v[(r*t+p)*d+a0+r] = 1
	}
	return tensors.FromFlatDataAndDimensions(v, k, t, d)
}

// readGrad hands a float32 or float64 tensor's data to f as float64.
func readGrad(t *tensors.Tensor, f func([]float64)) error {
	if t.DType() == dtypes.Float64 {
		return tensors.ConstFlatData(t, func(v []float64) { f(v) })
	}
	return tensors.ConstFlatData(t, func(v []float32) {
		w := make([]float64, len(v))
		for i, x := range v {
			w[i] = float64(x)
		}
		f(w)
	})
}

// SingularValues returns, for every input position w, the singular values of
// J_w (descending), flat [n, d].
func (j *Jacobians) SingularValues(ex Example, p int) ([]float64, error) {
	full, err := j.Full(ex, p)
	if err != nil {
		return nil, err
	}
	return BlockSingularValues(full, len(ex.IDs), j.net.Cfg.Hidden)
}

// BlockSingularValues takes J[a][w][b] (flat [d, n, d]) and returns the
// singular values of every block J_w[a,b] (descending), flat [n, d]; the
// blocks are decomposed in parallel (gonum's LAPACK port, Dgesvd).
func BlockSingularValues(full []float64, n, d int) ([]float64, error) {
	out := make([]float64, n*d)
	workers := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	errs := make([]error, workers)
	next := make(chan int)
	for wk := range workers {
		wg.Go(func() {
			m := mat.NewDense(d, d, nil)
			var svd mat.SVD
			for w := range next {
				for a := range d {
					for b := range d {
						m.Set(a, b, full[(a*n+w)*d+b])
					}
				}
				if !svd.Factorize(m, mat.SVDNone) {
					errs[wk] = fmt.Errorf("SVD of the Jacobian block of position %d did not converge", w)
					continue
				}
				svd.Values(out[w*d : (w+1)*d])
			}
		})
	}
	for w := range n {
		next <- w
	}
	close(next)
	wg.Wait()
	return out, errors.Join(errs...)
}
