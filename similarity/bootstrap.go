package similarity

import (
	"fmt"

	"github.com/attnscope/attnscope/stats"
	"github.com/attnscope/attnscope/tensor"
)

// Measure is a similarity between two representations of the same tokens.
type Measure func(x, y *tensor.Tensor) (float64, error)

// Bootstrap returns a confidence interval of m(X, Y) by resampling tokens (rows of
// X and Y together) with replacement, through stats.Bootstrap (opt: resamples,
// level, percentile or BCa, seed; BCa evaluates m once more per token for its
// jackknife). An error of m on a resample (e.g. a resample whose tokens are all
// the same) is returned, never a NaN bound.
func Bootstrap(x, y *tensor.Tensor, m Measure, opt stats.BootstrapOptions) (stats.Interval, error) {
	if _, _, err := pair(x, y); err != nil {
		return stats.Interval{}, fmt.Errorf("bootstrap: %w", err)
	}
	n := x.Shape[0]
	idx := make([]float64, n)
	for i := range idx {
		idx[i] = float64(i)
	}
	var first error
	stat := func(rows []float64) float64 {
		if first != nil {
			return 0
		}
		v, err := m(takeRows(x, rows), takeRows(y, rows))
		if err != nil {
			first = err
		}
		return v
	}
	iv, err := stats.Bootstrap(idx, stat, opt)
	if first != nil {
		return stats.Interval{}, fmt.Errorf("bootstrap resample: %w", first)
	}
	if err != nil {
		return stats.Interval{}, err
	}
	return iv, nil
}

// takeRows returns the rows of t (n×d) listed in rows (indices as float64).
func takeRows(t *tensor.Tensor, rows []float64) *tensor.Tensor {
	d := t.Shape[1]
	out := &tensor.Tensor{Shape: []int{len(rows), d}, Data: make([]float64, len(rows)*d)}
	for i, r := range rows {
		copy(out.Data[i*d:(i+1)*d], t.Data[int(r)*d:(int(r)+1)*d])
	}
	return out
}
