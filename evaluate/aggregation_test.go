package evaluate

import (
	"math"
	"slices"
	"testing"

	"github.com/attnscope/attnscope/tasks"
	"github.com/attnscope/attnscope/tensor"
)

const tol = 1e-6

func near(a, b float64) bool { return math.Abs(a-b) <= tol }

// Shared toy of spec §7: two layers, each with two identical heads.
func toy() *tensor.Tensor {
	a0 := []float64{1, 0, 0, 0.5, 0.5, 0, 0.2, 0.3, 0.5}
	a1 := []float64{1, 0, 0, 0.9, 0.1, 0, 0.1, 0.1, 0.8}
	return stack(3, [][][]float64{{a0, a0}, {a1, a1}})
}

// stack builds [L, H, n, n] attention from [L][H] row-major n×n matrices.
func stack(n int, layers [][][]float64) *tensor.Tensor {
	var data []float64
	for _, heads := range layers {
		for _, m := range heads {
			data = append(data, m...)
		}
	}
	return &tensor.Tensor{Shape: []int{len(layers), len(layers[0]), n, n}, Data: data}
}

// Oracle 24.
func TestAggregateAttentionOracle(t *testing.T) {
	r, err := AggregateAttention(toy(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1, 0, 0, 0.5875, 0.4125, 0, 0.1525, 0.1725, 0.675}
	for i := range want {
		if !near(r[i], want[i]) {
			t.Fatalf("rollout %v, want %v", r, want)
		}
	}
	id := []float64{1, 0, 0, 0, 1, 0, 0, 0, 1}
	r, _ = AggregateAttention(stack(3, [][][]float64{{id}, {id}, {id}}), nil)
	if !slices.Equal(r, id) {
		t.Fatalf("identity rollout %v", r)
	}
	if _, err := AggregateAttention(&tensor.Tensor{Shape: []int{1, 1, 3, 3}, Data: []float64{1}}, nil); err == nil {
		t.Fatal("wrong matrix size accepted")
	}
}

func oracleLabels() *tasks.Labels {
	return &tasks.Labels{N: 3, Cells: []int32{-100, -100, -100, -100, 1, 0, 0, 1, 0}}
}

// Oracle 25.
func TestPercentagesOracle(t *testing.T) {
	r, _ := AggregateAttention(toy(), nil)
	p := ComputePercentages(r, oracleLabels(), -100)
	if len(p) != 2 || !near(p[0], 1) || !near(p[1], 0.1725) {
		t.Fatalf("percentages %v, want [1 0.1725]", p)
	}
	e := EvaluatePercentages([][]float64{p})
	if !near(e.Mean, 0.58625) || !near(e.Variance, 0.342378) || !near(e.CILower, -0.224700) || !near(e.CIUpper, 1.397200) {
		t.Fatalf("evaluate_attention %+v", e)
	}
	if sc := e.SampleConsistency; !near(*sc.OverallMean, 0.58625) || sc.StdDev != 0 {
		t.Fatalf("consistency %+v", sc)
	}
}

// Oracle 26.
func TestCompareAttentionRunsOracle(t *testing.T) {
	c, err := CompareAttentionRuns([][]float64{{0.1, 0.2}, {0.3}}, [][]float64{{0.5, 0.6, 0.9}})
	if err != nil {
		t.Fatal(err)
	}
	if !near(*c.TStat, -3.5) || !near(*c.DF, 2.876404) || !near(*c.PValue, 0.042172) {
		t.Fatalf("t %v df %v p %v", *c.TStat, *c.DF, *c.PValue)
	}
	g1 := c.Group1
	if !near(*g1.Mean, 0.2) || !near(*g1.Variance, 0.01) || !near(*g1.SampleConsistency.OverallMean, 0.225) ||
		!near(g1.SampleConsistency.StdDev, 0.106066) || !near(g1.SampleConsistency.SampleMeans[0], 0.15) || !near(g1.SampleConsistency.SampleMeans[1], 0.3) {
		t.Fatalf("group 1 %+v", g1)
	}
	if !near(*c.Group2.Mean, 0.666667) || !near(*c.Group2.Variance, 0.043333) {
		t.Fatalf("group 2 %+v", c.Group2)
	}
	c, err = CompareAttentionRuns([][]float64{{0.5, 0.5}}, [][]float64{{0.2, 0.2}})
	if err != nil || c.TStat != nil || c.DF != nil || c.PValue != nil {
		t.Fatalf("zero variances: %+v %v", c, err)
	}
	if _, err := CompareAttentionRuns([][]float64{{0.5}}, [][]float64{{0.2, 0.3}}); err == nil {
		t.Fatal("one value accepted")
	}
}

// Oracle 27.
func TestPredictionCorrelationOracle(t *testing.T) {
	r, _ := AggregateAttention(toy(), nil)
	c := PredictionCorrelation([]Scored{{Agg: r, Labels: oracleLabels(), Targets: []int{-100, 5, 6}, Predictions: []int{0, 5, 7}}}, -100)
	if c.Group1.N != 1 || !near(*c.Group1.Mean, 1) || *c.Group1.Variance != 0 {
		t.Fatalf("correct group %+v", c.Group1)
	}
	if c.Group2.N != 1 || !near(*c.Group2.Mean, 0.1725) {
		t.Fatalf("error group %+v", c.Group2)
	}
	if c.TStat != nil || c.DF != nil || c.PValue != nil {
		t.Fatal("t-test with one value per group")
	}
}

// Oracle 28.
func TestAnalyzeErrorPositionsOracle(t *testing.T) {
	e := AnalyzeErrorPositions([][]int{{1, 0, 1}, {0, 0}})
	if !near(e.PiecewiseAccuracy, 40) || !near(*e.MeanErrorPosition, 0.666667) || !near(*e.Variance, 0.222222) {
		t.Fatalf("%+v", e)
	}
	if !slices.Equal(e.Histogram, []int{1, 2, 0}) {
		t.Fatalf("histogram %v", e.Histogram)
	}
	if e := AnalyzeErrorPositions([][]int{{1, 1}}); e.MeanErrorPosition != nil || e.PiecewiseAccuracy != 100 {
		t.Fatalf("no errors: %+v", e)
	}
}

func TestHeadShares(t *testing.T) {
	a0 := []float32{1, 0, 0, 0.5, 0.5, 0, 0.2, 0.3, 0.5}
	id := []float32{1, 0, 0, 0, 1, 0, 0, 0, 1}
	got := HeadShares([][][]float32{{a0, id}}, oracleLabels(), -100)
	// a0: row 1 → 0.5/(0.5+0) = 1, row 2 → 0.3/1 = 0.3; identity: row 1 → 1, row 2 → 0.
	if !near(got[0][0], 0.65) || !near(got[0][1], 0.5) {
		t.Fatalf("head shares %v, want [[0.65 0.5]]", got)
	}
}
