package runs

import (
	"context"
	"fmt"
	"strings"

	"github.com/attnscope/attnscope/similarity"
	"github.com/attnscope/attnscope/stats"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

// Measures lists the similarity measures by name.
var Measures = []string{"linear-cka", "rbf-cka", "minibatch-cka", "pwcca", "svcca"}

// SimilarityOptions configure Similarity.
type SimilarityOptions struct {
	Measure   string // one of Measures
	Feature   Feature
	MaxTokens int                     // keep the first MaxTokens stacked tokens (0: all)
	PWCCA     similarity.PWCCAOptions // pwcca
	SVCCA     similarity.SVCCAOptions // svcca
	Threshold float64                 // rbf-cka (and minibatch-cka with RBF): 0 means 1
	RBF       bool                    // minibatch-cka with the RBF kernel
	Batch     int                     // minibatch-cka: tokens per minibatch (0 means 512)
	Bootstrap int                     // resamples of the token bootstrap (0: no interval)
	Interval  stats.BootstrapOptions  // level, method, seed of the bootstrap
	PerSample bool                    // also compare each sample's tokens alone
	Progress  func(done, total int)   // called after each cell (nil: none)
}

// SimilarityResult is a layer × layer similarity matrix.
type SimilarityResult struct {
	RowNames, ColNames []string  // layers of run A (rows) and run B (columns)
	Tokens             int       // tokens compared (stacked over the samples)
	Values             []float64 // row-major len(RowNames)×len(ColNames)
	Low, High          []float64 // bootstrap interval (nil without bootstrap)
	// PerSample holds each sample's matrix (PerSample option).
	PerSample map[string][]float64
}

// measure returns the similarity.Measure for opt.
func (opt SimilarityOptions) measure() (similarity.Measure, error) {
	switch opt.Measure {
	case "linear-cka":
		return similarity.LinearCKA, nil
	case "rbf-cka":
		return func(x, y *tensor.Tensor) (float64, error) {
			return similarity.CKA(x, y, similarity.Kernel{RBF: true, Threshold: opt.Threshold})
		}, nil
	case "minibatch-cka":
		batch := opt.Batch
		if batch == 0 {
			batch = 512
		}
		if batch < 4 {
			return nil, fmt.Errorf("minibatch of %d tokens: at least 4 expected", batch)
		}
		k := similarity.Kernel{RBF: opt.RBF, Threshold: opt.Threshold}
		return func(x, y *tensor.Tensor) (float64, error) {
			m := similarity.MinibatchCKA{Kernel: k}
			n := x.Shape[0]
			for s := 0; s < n; s += batch {
				e := min(s+batch, n)
				if n-e < 4 { // a last minibatch too small for HSIC₁ joins this one
					e = n
				}
				if err := m.Add(rowRange(x, s, e), rowRange(y, s, e)); err != nil {
					return 0, err
				}
				s = e - batch
			}
			return m.Value()
		}, nil
	case "pwcca":
		return func(x, y *tensor.Tensor) (float64, error) {
			r, err := similarity.PWCCA(x, y, opt.PWCCA)
			return r.PWCCA, err
		}, nil
	case "svcca":
		return func(x, y *tensor.Tensor) (float64, error) {
			r, err := similarity.SVCCA(x, y, opt.SVCCA)
			return r.SVCCA, err
		}, nil
	}
	return nil, fmt.Errorf("measure %q: one of %s expected", opt.Measure, strings.Join(Measures, ", "))
}

func rowRange(t *tensor.Tensor, from, to int) *tensor.Tensor {
	d := t.Shape[1]
	return &tensor.Tensor{Shape: []int{to - from, d}, Data: t.Data[from*d : to*d]}
}

// Similarity compares every layer of run A with every layer of run B on the pair's
// samples (tokens stacked), and each sample alone when opt.PerSample.
func Similarity(ctx context.Context, p *Pair, opt SimilarityOptions) (*SimilarityResult, error) {
	m, err := opt.measure()
	if err != nil {
		return nil, err
	}
	if opt.Bootstrap < 0 {
		return nil, fmt.Errorf("bootstrap resamples %d: 0 (none) or more expected", opt.Bootstrap)
	}
	namesA, xs, err := Layers(ctx, p.A, p.Samples, opt.Feature, opt.MaxTokens)
	if err != nil {
		return nil, err
	}
	namesB, ys, err := Layers(ctx, p.B, p.Samples, opt.Feature, opt.MaxTokens)
	if err != nil {
		return nil, err
	}
	res := &SimilarityResult{RowNames: namesA, ColNames: namesB, Tokens: xs[0].Shape[0]}
	res.Values, err = matrix(ctx, xs, ys, m, opt, opt.Progress)
	if err != nil {
		return nil, err
	}
	if opt.Bootstrap > 0 {
		bo := opt.Interval
		bo.Resamples = opt.Bootstrap
		res.Low = make([]float64, len(res.Values))
		res.High = make([]float64, len(res.Values))
		for i := range xs {
			for j := range ys {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				iv, err := similarity.Bootstrap(xs[i], ys[j], m, bo)
				if err != nil {
					return nil, fmt.Errorf("bootstrap of %s (run A) vs %s (run B): %w", namesA[i], namesB[j], err)
				}
				res.Low[i*len(ys)+j], res.High[i*len(ys)+j] = iv.Low, iv.High
			}
		}
	}
	if opt.PerSample {
		res.PerSample = map[string][]float64{}
		for _, id := range p.Samples {
			_, sx, err := Layers(ctx, p.A, []string{id}, opt.Feature, 0)
			if err != nil {
				return nil, err
			}
			_, sy, err := Layers(ctx, p.B, []string{id}, opt.Feature, 0)
			if err != nil {
				return nil, err
			}
			v, err := matrix(ctx, sx, sy, m, opt, nil)
			if err != nil {
				return nil, fmt.Errorf("sample %s: %w", id, err)
			}
			res.PerSample[id] = v
		}
	}
	return res, nil
}

// matrix fills the layer × layer matrix (linear CKA through the shared-norm path).
func matrix(ctx context.Context, xs, ys []*tensor.Tensor, m similarity.Measure, opt SimilarityOptions, progress func(int, int)) ([]float64, error) {
	if opt.Measure == "linear-cka" {
		// The layers are this package's own copies; CKA does not depend on centring.
		return similarity.LinearCKAMatrixInPlace(xs, ys)
	}
	out := make([]float64, len(xs)*len(ys))
	for i := range xs {
		for j := range ys {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			v, err := m(xs[i], ys[j])
			if err != nil {
				return nil, fmt.Errorf("layer %d (run A) vs layer %d (run B): %w", i, j, err)
			}
			out[i*len(ys)+j] = v
			if progress != nil {
				progress(i*len(ys)+j+1, len(out))
			}
		}
	}
	return out, nil
}

// PooledID names the matrix over all samples' tokens in the CSV (beside each
// sample's id with PerSample).
const PooledID = "all-samples"

// WriteSimilarity stores res in run A: the matrix over all samples' tokens as the
// run-level output pass (axes [layer of A, layer of B], labelled with the layer
// names), with a bootstrap the run-level output pass+"_interval" [layer, layer,
// criterion(low, high)], and with PerSample each sample's matrix as the derived
// output of pass for that sample.
func WriteSimilarity(p *Pair, pass string, res *SimilarityResult, opt SimilarityOptions, kwargs map[string]any) error {
	axes := []store.Axis{{Name: store.AxisLayer, Labels: res.RowNames}, {Name: store.AxisLayer, Labels: res.ColNames}}
	set := store.PassSettings{Function: "similarity_" + opt.Measure, Input: string(opt.Feature), Kwargs: kwargs, Axes: axes}
	shape := []int{len(res.RowNames), len(res.ColNames)}
	if len(res.PerSample) > 0 {
		if err := p.A.PreparePass(pass, set); err != nil {
			return err
		}
		for id, v := range res.PerSample {
			if err := p.A.WriteDerived(pass, id, &tensor.Tensor{Shape: shape, Data: v}, nil); err != nil {
				return err
			}
		}
	}
	if err := p.A.WriteRunOutput(pass, set, &tensor.Tensor{Shape: shape, Data: res.Values}); err != nil {
		return err
	}
	if res.Low == nil {
		return nil
	}
	iset := set
	iset.Function += "_bootstrap_interval"
	iset.Axes = append(append([]store.Axis(nil), axes...), store.Axis{Name: store.AxisCriterion, Labels: []string{"low", "high"}})
	iv := tensor.New(shape[0], shape[1], 2)
	for k := range res.Low {
		iv.Data[2*k], iv.Data[2*k+1] = res.Low[k], res.High[k]
	}
	return p.A.WriteRunOutput(pass+"_interval", iset, iv)
}
