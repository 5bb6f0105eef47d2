package derive

import (
	"context"
	"fmt"
	"slices"

	"github.com/attnscope/attnscope/analysis"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

// qkOpener is implemented by runs that serve --store qk samples (*store.Run).
type qkOpener interface {
	OpenQK(id string) (*store.QKReader, error)
}

// streamBlockValues is the number of weights in one row block (128 MiB of float64).
const streamBlockValues = 1 << 24

// qkSample opens the sample's qk reader when the run has one and the sample was
// captured with --store qk; nil otherwise.
func qkSample(run Run, id string) (*store.QKReader, error) {
	o, ok := run.(qkOpener)
	if !ok {
		return nil, nil
	}
	s, err := run.Sample(id)
	if err != nil || s.QK == nil {
		return nil, nil //nolint:nilerr // not a qk sample: the layer path reports errors
	}
	return o.OpenQK(id)
}

// runStreamed runs an EachLayer pass with a RowStream over a qk sample, one row
// block of every head at a time.
func runStreamed(ctx context.Context, q *store.QKReader, spec *Spec, kw Kwargs) (*Result, error) {
	info := q.Info()
	H, N := info.Heads, info.Tokens
	rows := max(1, streamBlockValues/(H*N))
	var out *Result
	var block *tensor.Tensor // one buffer for every block but the last
	for l := range info.Layers {
		var vals []float64
		var validRows []bool
		if spec.Stream.Sum {
			vals = make([]float64, N)
		} else {
			vals = make([]float64, H*N)
		}
		for r0 := 0; r0 < N; r0 += rows {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			r1 := min(N, r0+rows)
			if block == nil || block.Shape[1] != r1-r0 {
				block = tensor.New(H, r1-r0, N)
			}
			if err := q.RowsInto(block, l, r0, r1); err != nil {
				return nil, err
			}
			v, ok, err := spec.Stream.Block(block, kw)
			if err != nil {
				return nil, fmt.Errorf("layer %d rows %d..%d: %w", l, r0, r1, err)
			}
			if spec.Stream.Sum {
				for j := range vals {
					vals[j] += v[j]
				}
				continue
			}
			if ok != nil && validRows == nil {
				validRows = make([]bool, H*N)
				for i := range validRows {
					validRows[i] = true
				}
			}
			for h := range H {
				copy(vals[h*N+r0:h*N+r1], v[h*(r1-r0):(h+1)*(r1-r0)])
				if ok != nil {
					copy(validRows[h*N+r0:h*N+r1], ok[h*(r1-r0):(h+1)*(r1-r0)])
				}
			}
		}
		t := &tensor.Tensor{Shape: []int{1, H, N}, Data: vals}
		if spec.Stream.Sum {
			t.Shape = []int{1, N}
		}
		res, err := spec.Stream.Finish(t, validRows, kw)
		if err != nil {
			return nil, err
		}
		for k := range res.Metrics {
			if res.Metrics[k].Layer >= 0 {
				res.Metrics[k].Layer += l
			}
		}
		if out == nil {
			out = res
			continue
		}
		if err := concat(out.Tensor, res.Tensor); err != nil {
			return nil, fmt.Errorf("layer %d: %w", l, err)
		}
		out.Metrics = append(out.Metrics, res.Metrics...)
	}
	if spec.Summarize != nil {
		out.Metrics = spec.Summarize(out.Metrics)
	}
	return out, nil
}

// rowStat streams a per-row statistic f(row) → (value, valid).
func rowStat(f func(row []float64, kw Kwargs) (float64, bool)) func(*tensor.Tensor, Kwargs) ([]float64, []bool, error) {
	return func(b *tensor.Tensor, kw Kwargs) ([]float64, []bool, error) {
		H, R, N := b.Shape[0], b.Shape[1], b.Shape[2]
		vals, valid := make([]float64, H*R), make([]bool, H*R)
		for k := range H * R {
			vals[k], valid[k] = f(b.Data[k*N:(k+1)*N], kw)
		}
		return vals, valid, nil
	}
}

func streamEntropy() *RowStream {
	return &RowStream{
		Block: rowStat(func(row []float64, kw Kwargs) (float64, bool) {
			return analysis.RowEntropy(row, analysis.EntropyConvention(kw.String("convention")))
		}),
		Finish: func(t *tensor.Tensor, valid []bool, _ Kwargs) (*Result, error) {
			return &Result{Tensor: t, Metrics: headRows("entropy", analysis.HeadMeans(t, valid))}, nil
		},
	}
}

func streamMaxWeight() *RowStream {
	return &RowStream{
		Block: rowStat(func(row []float64, _ Kwargs) (float64, bool) { return slices.Max(row), true }),
		Finish: func(t *tensor.Tensor, _ []bool, _ Kwargs) (*Result, error) {
			return &Result{Tensor: t, Metrics: headRows("max_weight", analysis.HeadMeans(t, nil))}, nil
		},
	}
}

// streamReceived sums each block's column sums of the head-mean matrix.
func streamReceived() *RowStream {
	return &RowStream{
		Sum: true,
		Block: func(b *tensor.Tensor, _ Kwargs) ([]float64, []bool, error) {
			H, R, N := b.Shape[0], b.Shape[1], b.Shape[2]
			out := make([]float64, N)
			for k := range H * R {
				for j, v := range b.Data[k*N : (k+1)*N] {
					out[j] += v
				}
			}
			for j := range out {
				out[j] /= float64(H)
			}
			return out, nil, nil
		},
		Finish: func(t *tensor.Tensor, _ []bool, _ Kwargs) (*Result, error) { return &Result{Tensor: t}, nil },
	}
}
