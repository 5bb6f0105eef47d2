package similarity

import (
	"fmt"
	"math"

	"github.com/attnscope/attnscope/tensor"
)

// HeadCosts returns the L1 cost between the heads of one layer of two models on the
// same sample: x is [heads_x, query, key] (the first model), y [heads_y, query, key]
// (the second); C[a,b] = Σ_{i,j} |y[a,i,j] − x[b,i,j]|, shape [heads_y, heads_x]
// (BERT-non-text's matching.py: rows are the second model's heads).
func HeadCosts(x, y *tensor.Tensor) (*tensor.Tensor, error) {
	if len(x.Shape) != 3 || len(y.Shape) != 3 {
		return nil, fmt.Errorf("head costs: attention of shapes %v and %v, [heads, query, key] expected", x.Shape, y.Shape)
	}
	if x.Shape[1] != y.Shape[1] || x.Shape[2] != y.Shape[2] {
		return nil, fmt.Errorf("head costs: attention maps of %d×%d and %d×%d tokens: the same tokens expected", x.Shape[1], x.Shape[2], y.Shape[1], y.Shape[2])
	}
	hx, hy, m := x.Shape[0], y.Shape[0], x.Shape[1]*x.Shape[2]
	if len(x.Data) != hx*m || len(y.Data) != hy*m {
		return nil, fmt.Errorf("head costs: data does not match shapes %v and %v", x.Shape, y.Shape)
	}
	out := tensor.New(hy, hx)
	for a := range hy {
		ya := y.Data[a*m : (a+1)*m]
		for b := range hx {
			xb := x.Data[b*m : (b+1)*m]
			var s float64
			for i, v := range ya {
				s += math.Abs(v - xb[i])
			}
			if math.IsNaN(s) || math.IsInf(s, 0) {
				return nil, fmt.Errorf("head costs: head %d of Y against head %d of X is %v; finite attention expected", a, b, s)
			}
			out.Data[a*hx+b] = s
		}
	}
	return out, nil
}

// MatchHeads assigns heads of the second model (rows of cost, [heads_y, heads_x]) to
// heads of the first at minimum total cost; perm[a] is the head of the first model
// matched to head a (−1 when heads_y > heads_x leaves a unmatched) and total is the
// intended statistic Σ_a C[a, perm[a]].
func MatchHeads(cost *tensor.Tensor) (perm []int, total float64, err error) {
	if len(cost.Shape) != 2 {
		return nil, 0, fmt.Errorf("match heads: cost of shape %v, [heads_y, heads_x] expected", cost.Shape)
	}
	return Assign(cost.Data, cost.Shape[0], cost.Shape[1])
}

// QuirkTotals reproduces BERT-non-text's matching.py value for one layer from the
// costs of its samples (each [heads_y, heads_x]) and their assignments: for sample s
// with assignment (row_k, col_k) it sums Σ_k Σ_b C[row_k][col_k, b], indexing the
// sample axis with the matched row and summing all columns, a quantity that depends
// only on the assignment. An index the original would read out of range (fewer
// samples than heads) is an error.
func QuirkTotals(costs []*tensor.Tensor, perms [][]int) ([]float64, error) {
	out := make([]float64, len(costs))
	for s, p := range perms {
		for row, col := range p {
			if col < 0 {
				continue
			}
			if row >= len(costs) {
				return nil, fmt.Errorf("original head-matching value: sample %d's assignment reads sample %d of %d (the original indexes samples with head numbers and needs at least as many samples as heads)", s, row, len(costs))
			}
			c := costs[row]
			if col >= c.Shape[0] {
				return nil, fmt.Errorf("original head-matching value: sample %d's assignment reads row %d of a cost matrix with %d rows", s, col, c.Shape[0])
			}
			w := c.Shape[1]
			for _, v := range c.Data[col*w : (col+1)*w] {
				out[s] += v
			}
		}
	}
	return out, nil
}

// MeanStd returns the mean and the population standard deviation (divisor n, NumPy's
// default) of v; NaN-free: an empty v is an error.
func MeanStd(v []float64) (mean, std float64, err error) {
	if len(v) == 0 {
		return 0, 0, fmt.Errorf("mean and std of no values")
	}
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(v))), nil
}
