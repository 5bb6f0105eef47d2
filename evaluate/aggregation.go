// Package evaluate implements AttentionSpan's evaluation (spec seeds.md §2.5–2.6):
// teacher-forced exact-match and piecewise accuracy, error positions, attention
// rollout aggregated over layers, the share of attention on reference tokens,
// the correct-versus-wrong comparison and the in- versus out-of-distribution
// Welch test, with results as JSON and CSV.
package evaluate

import (
	"fmt"
	"math"

	"github.com/attnscope/attnscope/analysis"
	"github.com/attnscope/attnscope/stats"
	"github.com/attnscope/attnscope/tasks"
	"github.com/attnscope/attnscope/tensor"
)

// AggregateAttention is attention rollout with residual (Abnar & Zuidema 2020,
// as AttentionSpan's aggregate_attention): Ā_l = Σ_h w_{l,h}·A_{l,h} (w = 1/H by
// default), Â_l = rownorm(Ā_l + I), R = Â_{L−1}⋯Â_1·Â_0, the rollout itself
// computed by package analysis. a is one sample's post-softmax attention,
// [layer, head, query, key] with square matrices; weights, when non-nil, is [L][H].
// It returns the N×N rollout, row-major.
func AggregateAttention(a *tensor.Tensor, weights [][]float64) ([]float64, error) {
	if a == nil || len(a.Shape) != 4 || a.Check() != nil || a.Shape[2] != a.Shape[3] {
		return nil, fmt.Errorf("aggregate attention: [layer, head, N, N] attention expected")
	}
	L, H, n := a.Shape[0], a.Shape[1], a.Shape[2]
	if L == 0 {
		return nil, fmt.Errorf("aggregate attention: no layers")
	}
	if H == 0 {
		return nil, fmt.Errorf("aggregate attention: no heads")
	}
	if weights != nil && len(weights) != L {
		return nil, fmt.Errorf("aggregate attention: weights must be [%d layers][heads]", L)
	}
	combined := analysis.New(L, n, n)
	for l := range L {
		if weights != nil && len(weights[l]) != H {
			return nil, fmt.Errorf("aggregate attention: weights of layer %d must have %d values", l, H)
		}
		avg := combined.Matrix(l, 0)
		for h := range H {
			w := 1 / float64(H)
			if weights != nil {
				w = weights[l][h]
			}
			for i, v := range a.Matrix(l, h) {
				avg[i] += w * v
			}
		}
	}
	r, err := analysis.RolloutMatrices(combined, true)
	if err != nil {
		return nil, fmt.Errorf("aggregate attention: %w", err)
	}
	return append([]float64(nil), r.Matrix(L-1, 0)...), nil
}

// rowPercentage is Σ_{label=1}|a| / (Σ_{label=1}|a| + Σ_{label=0}|a|), 0 when
// the denominator is 0; ok is false when the row is entirely ignore-index.
func rowPercentage(agg []float64, labels *tasks.Labels, r int, ignore int32) (p float64, ok bool) {
	n := labels.N
	var one, zero float64
	for c := 0; c < n; c++ {
		switch labels.At(r, c) {
		case 1:
			one += math.Abs(agg[r*n+c])
			ok = true
		case 0:
			zero += math.Abs(agg[r*n+c])
			ok = true
		case ignore:
		default:
			ok = true // other values count for neither sum, as in the original
		}
	}
	if !ok {
		return 0, false
	}
	if one+zero > 0 {
		return one / (one + zero), true
	}
	return 0, true
}

// ComputePercentages returns, for one sample, the share of aggregated attention
// on reference tokens of every row not entirely ignored (compute_percentages).
func ComputePercentages(agg []float64, labels *tasks.Labels, ignore int) []float64 {
	out := []float64{}
	for r := 0; r < labels.N; r++ {
		if p, ok := rowPercentage(agg, labels, r, int32(ignore)); ok {
			out = append(out, p)
		}
	}
	return out
}

// Consistency summarises per-sample means (analyze_sample_consistency).
type Consistency struct {
	SampleMeans []float64 `json:"sample_means"`
	OverallMean *float64  `json:"overall_mean"`
	StdDev      float64   `json:"std_dev"` // sample std (n−1), 0 when n ≤ 1
	Min         *float64  `json:"min"`
	Max         *float64  `json:"max"`
}

// SampleConsistency computes the per-sample means (empty samples skipped) and
// their summary.
func SampleConsistency(perSample [][]float64) Consistency {
	c := Consistency{SampleMeans: []float64{}}
	for _, s := range perSample {
		if len(s) > 0 {
			c.SampleMeans = append(c.SampleMeans, stats.Mean(s))
		}
	}
	if len(c.SampleMeans) == 0 {
		return c
	}
	m := stats.Mean(c.SampleMeans)
	lo, hi := c.SampleMeans[0], c.SampleMeans[0]
	for _, v := range c.SampleMeans {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	c.OverallMean, c.Min, c.Max = &m, &lo, &hi
	c.StdDev = math.Sqrt(stats.Variance(c.SampleMeans))
	return c
}

// AttentionEval is evaluate_attention's result.
type AttentionEval struct {
	N                 int         `json:"n"`
	Mean              float64     `json:"mean"`
	Variance          float64     `json:"variance"`
	CILower           float64     `json:"ci_lower"`
	CIUpper           float64     `json:"ci_upper"`
	Percentages       []float64   `json:"percentages"`
	SampleConsistency Consistency `json:"sample_consistency"`
}

func flatten(x [][]float64) []float64 {
	var out []float64
	for _, s := range x {
		out = append(out, s...)
	}
	return out
}

// EvaluatePercentages summarises per-sample percentages: over the flattened
// values, n, mean μ, sample variance s², 95% CI μ ± 1.96·s/√n
// (evaluate_attention). With no values the mean is NaN.
func EvaluatePercentages(perSample [][]float64) AttentionEval {
	flat := flatten(perSample)
	e := AttentionEval{N: len(flat), Percentages: flat, Mean: stats.Mean(flat), Variance: stats.Variance(flat)}
	if e.Percentages == nil {
		e.Percentages = []float64{}
	}
	e.CILower, e.CIUpper = stats.CI95(e.Mean, e.Variance, e.N)
	e.SampleConsistency = SampleConsistency(perSample)
	return e
}

// GroupStats are the moments of one group of percentages.
type GroupStats struct {
	Mean              *float64     `json:"mean"`
	Variance          *float64     `json:"variance"`
	CILower           *float64     `json:"ci_lower,omitempty"`
	CIUpper           *float64     `json:"ci_upper,omitempty"`
	N                 int          `json:"n"`
	SampleConsistency *Consistency `json:"sample_consistency,omitempty"`
}

// Comparison is a Welch test between two groups; TStat, DF and PValue are nil
// when both variances are 0 (or, for the correlation, a group has < 2 values).
type Comparison struct {
	TStat  *float64   `json:"t_stat"`
	DF     *float64   `json:"df"`
	PValue *float64   `json:"p_value"`
	Group1 GroupStats `json:"group1"`
	Group2 GroupStats `json:"group2"`
}

func ptr(v float64) *float64 { return &v }

// CompareAttentionRuns is compare_attention_runs: Welch's t-test between the
// flattened percentages of two runs (e.g. in- and out-of-distribution), with each
// run's mean, variance and sample consistency. Fewer than two values in either
// run is an error.
func CompareAttentionRuns(p1, p2 [][]float64) (*Comparison, error) {
	w, err := stats.WelchTTest(flatten(p1), flatten(p2))
	if err != nil {
		return nil, fmt.Errorf("compare attention runs: %w", err)
	}
	c1, c2 := SampleConsistency(p1), SampleConsistency(p2)
	out := &Comparison{
		Group1: GroupStats{Mean: ptr(w.Mean1), Variance: ptr(w.Variance1), N: w.N1, SampleConsistency: &c1},
		Group2: GroupStats{Mean: ptr(w.Mean2), Variance: ptr(w.Variance2), N: w.N2, SampleConsistency: &c2},
	}
	if w.Defined {
		out.TStat, out.DF, out.PValue = ptr(w.T), ptr(w.DF), ptr(w.P)
	}
	return out, nil
}

func groupStats(x []float64) GroupStats {
	g := GroupStats{N: len(x)}
	if len(x) == 0 {
		return g
	}
	m, v := stats.Mean(x), stats.Variance(x)
	lo, hi := stats.CI95(m, v, len(x))
	g.Mean, g.Variance, g.CILower, g.CIUpper = &m, &v, &lo, &hi
	return g
}

// Scored is one sample's aggregated attention with its labels, targets and
// teacher-forced predictions (all over the same N positions).
type Scored struct {
	Agg         []float64
	Labels      *tasks.Labels
	Targets     []int
	Predictions []int
}

// PredictionCorrelation is evaluate_attention_prediction_correlation: the
// reference-attention share of every scored token (target not ignored, label
// row not all ignored), grouped by whether the prediction was right
// (Group1 = correct, Group2 = error), with a Welch test when both groups have
// at least two values and not both variances are 0.
func PredictionCorrelation(samples []Scored, ignore int) Comparison {
	var ok, bad []float64
	for _, s := range samples {
		o, b := scoredShares(s, ignore)
		ok, bad = append(ok, o...), append(bad, b...)
	}
	return correlation(ok, bad)
}

// scoredShares are one sample's reference-attention shares of its scored tokens
// predicted right (ok) and wrong (bad), in token order.
func scoredShares(s Scored, ignore int) (ok, bad []float64) {
	for r := 0; r < s.Labels.N && r < len(s.Targets); r++ {
		if s.Targets[r] == ignore {
			continue
		}
		p, valid := rowPercentage(s.Agg, s.Labels, r, int32(ignore))
		if !valid {
			continue
		}
		if s.Predictions[r] == s.Targets[r] {
			ok = append(ok, p)
		} else {
			bad = append(bad, p)
		}
	}
	return ok, bad
}

// correlation is PredictionCorrelation's comparison of the shares of right and
// wrong predictions.
func correlation(ok, bad []float64) Comparison {
	c := Comparison{Group1: groupStats(ok), Group2: groupStats(bad)}
	if len(ok) >= 2 && len(bad) >= 2 {
		w, _ := stats.WelchTTest(ok, bad)
		if w.Defined {
			c.TStat, c.DF, c.PValue = ptr(w.T), ptr(w.DF), ptr(w.P)
		}
	}
	return c
}

// ErrorPositions is analyze_error_positions' result.
type ErrorPositions struct {
	PiecewiseAccuracy float64  `json:"overall_piecewise_accuracy"` // percent
	MeanErrorPosition *float64 `json:"mean_error_position"`
	Variance          *float64 `json:"variance"` // population variance (numpy.var)
	// Histogram[i] counts errors at position i, for i in [0, longest sequence).
	Histogram []int `json:"histogram"`
}

// AnalyzeErrorPositions summarises per-sample 0/1 correctness lists:
// accuracy = 100·Σcorrect/Σlen, the mean and population variance of the
// (0-based) error positions, and their histogram.
func AnalyzeErrorPositions(piecewise [][]int) ErrorPositions {
	var e ErrorPositions
	var pos []float64
	total, correct, longest := 0, 0, 0
	for _, seq := range piecewise {
		total += len(seq)
		longest = max(longest, len(seq))
		for i, v := range seq {
			correct += v
			if v == 0 {
				pos = append(pos, float64(i))
			}
		}
	}
	if total > 0 {
		e.PiecewiseAccuracy = 100 * float64(correct) / float64(total)
	}
	e.Histogram = make([]int, longest)
	for _, p := range pos {
		e.Histogram[int(p)]++
	}
	if len(pos) > 0 {
		e.MeanErrorPosition, e.Variance = ptr(stats.Mean(pos)), ptr(stats.PopVariance(pos))
	}
	return e
}

// HeadShares returns, for one sample, the mean share of each head's raw
// attention on reference tokens over the label rows (the compute_percentages
// formula applied to A_{l,h} instead of the rollout): out[l][h], NaN when the
// sample has no label row. It shows which heads do the alignment the task needs.
func HeadShares(attn [][][]float32, labels *tasks.Labels, ignore int) [][]float64 {
	n := labels.N
	out := make([][]float64, len(attn))
	buf := make([]float64, n*n)
	for l, heads := range attn {
		out[l] = make([]float64, len(heads))
		for h, m := range heads {
			for i := range buf {
				buf[i] = float64(m[i])
			}
			p := ComputePercentages(buf, labels, ignore)
			if len(p) == 0 {
				out[l][h] = math.NaN()
				continue
			}
			out[l][h] = stats.Mean(p)
		}
	}
	return out
}
