package train

import (
	"context"
	"fmt"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // graph DSL
	"github.com/gomlx/gomlx/core/tensors"
)

// Predictor runs teacher-forced forward passes of a model on GoMLX (the
// model/arch graph of its family, batched): the argmax prediction at every
// position and, optionally, every layer's attention.
type Predictor struct {
	Config ModelConfig
	params []*tensors.Tensor
	exec   *Exec // predictions only
	execA  *Exec // predictions + attention
}

// NewPredictor compiles the forward pass for the given weights.
func NewPredictor(backend compute.Backend, cfg ModelConfig, weights [][]float32) (*Predictor, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n, err := cfg.net()
	if err != nil {
		return nil, err
	}
	specs := n.params
	if len(weights) != len(specs) {
		return nil, fmt.Errorf("predict: %d weight tensors given, the model has %d", len(weights), len(specs))
	}
	p := &Predictor{Config: cfg}
	for i, s := range specs {
		p.params = append(p.params, tensors.FromFlatDataAndDimensions(weights[i], s.Shape...))
	}
	np := len(specs)
	build := func(attn bool) (*Exec, error) {
		return NewExec(backend, func(in []*Node) []*Node {
			logits, pats := n.forward(in[:np], in[np], attn)
			out := []*Node{ArgMax(logits, -1, in[np].DType())}
			return append(out, pats...)
		})
	}
	if p.exec, err = build(false); err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	if p.execA, err = build(true); err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	return p, nil
}

// Prediction is the output of one padded batch.
type Prediction struct {
	IDs [][]int // argmax token at every position [B][T]
	// Attention[b][l][h] is the T×T row-major pattern of sample b (nil unless asked).
	Attention [][][][]float32
}

// Predict runs a right-padded batch ids [B][T].
func (p *Predictor) Predict(ctx context.Context, ids [][]int, withAttention bool) (*Prediction, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return &Prediction{}, nil
	}
	b, t := len(ids), len(ids[0])
	if t > p.Config.NPositions {
		return nil, fmt.Errorf("predict: %d tokens exceed n_positions %d", t, p.Config.NPositions)
	}
	args := make([]any, 0, len(p.params)+1)
	for _, x := range p.params {
		args = append(args, x)
	}
	args = append(args, matrix(ids, p.Config.VocabSize))
	exec := p.exec
	if withAttention {
		exec = p.execA
	}
	out, err := exec.Call(args...)
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	flat, err := tensors.CopyFlatData[int32](out[0])
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	res := &Prediction{IDs: make([][]int, b)}
	for i := range res.IDs {
		res.IDs[i] = make([]int, t)
		for j := range res.IDs[i] {
			res.IDs[i][j] = int(flat[i*t+j])
		}
	}
	if withAttention {
		h := p.Config.NHead
		res.Attention = make([][][][]float32, b)
		for i := range res.Attention {
			res.Attention[i] = make([][][]float32, p.Config.NLayer)
		}
		for l, o := range out[1:] {
			a, err := tensors.CopyFlatData[float32](o)
			if err != nil {
				return nil, fmt.Errorf("predict: %w", err)
			}
			for i := 0; i < b; i++ {
				res.Attention[i][l] = make([][]float32, h)
				for hh := 0; hh < h; hh++ {
					off := (i*h + hh) * t * t
					res.Attention[i][l][hh] = a[off : off+t*t : off+t*t]
				}
			}
		}
	}
	return res, nil
}

// Forward adapts Predict to evaluate.Forwarder.
func (p *Predictor) Forward(ctx context.Context, ids [][]int, withAttention bool) ([][]int, [][][][]float32, error) {
	pr, err := p.Predict(ctx, ids, withAttention)
	if err != nil {
		return nil, nil, err
	}
	return pr.IDs, pr.Attention, nil
}
