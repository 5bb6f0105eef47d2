package analysis

import (
	"testing"
)

func TestMakeSymmetric(t *testing.T) {
	m, _ := FromFloat64([]int{3, 3}, []float64{1, 2, 0, 3, 4, 0, 5, 6, 7})
	tests := []struct {
		strategy string
		want     []float64
	}{
		{SymMax, []float64{1, 3, 5, 3, 4, 6, 5, 6, 7}},
		{SymMean, []float64{1, 2.5, 2.5, 2.5, 4, 3, 2.5, 3, 7}},
		{SymSum, []float64{1, 5, 5, 5, 4, 6, 5, 6, 7}},
		{"", []float64{1, 5, 5, 5, 4, 6, 5, 6, 7}},
	}
	for _, tc := range tests {
		got, err := MakeSymmetric(m, tc.strategy)
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "make_symmetric "+tc.strategy, got.Data, tc.want, tol)
	}
	if _, err := MakeSymmetric(m, "min"); err == nil {
		t.Fatal("strategy min accepted")
	}
}

func TestBaselines(t *testing.T) {
	u, err := UniformBaseline(3)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "uniform", u.Data, []float64{1, 0, 0, 0.5, 0.5, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3}, tol)
	c, err := CopyCatBaseline([]string{"a", "b", "a"})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "copy-cat", c.Data, []float64{1, 0, 1, 0, 1, 0, 1, 0, 1}, 0)
	g, err := GaussianBaseline(5, 1)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "gaussian row 0", g.Data[0:5], []float64{0.398943, 0.241971, 0.053991, 0.004432, 0.000134}, tol)
	assertClose(t, "gaussian row 2", g.Data[10:15], []float64{0.053991, 0.241971, 0.398943, 0.241971, 0.053991}, tol)
	if _, err := GaussianBaseline(5, 0); err == nil {
		t.Fatal("sigma 0 accepted")
	}
}

func TestSlicing(t *testing.T) {
	// A [3,2] tensor: values 0..5.
	x, _ := FromFloat64([]int{3, 2}, []float64{0, 1, 2, 3, 4, 5})
	lo, err := ExtractHalfAndSum(x, 0, "lower")
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "lower (index 0 only)", lo.Data, []float64{0, 1}, 0)
	up, err := ExtractHalfAndSum(x, 0, "upper")
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "upper (indices 1-2)", up.Data, []float64{6, 8}, 0)
	s, err := ExtractSlice(x, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "slice -1", s.Data, []float64{4, 5}, 0)
	s, err = ExtractSlice(x, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	assertShape(t, "slice axis 1", s, 3)
	assertClose(t, "slice axis 1", s.Data, []float64{0, 2, 4}, 0)
	if _, err := ExtractSlice(x, 0, 3); err == nil {
		t.Fatal("index 3 of size 3 accepted")
	}
	if _, err := ExtractSlice(x, 2, 0); err == nil {
		t.Fatal("axis 2 of a rank-2 tensor accepted")
	}

	// max_k_predictions: P = 3, k = 1, N = 6 → 4×4.
	att := randomAttention(3, 2, 2, 6, true)
	cut, err := MaxKPredictions(att, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	assertShape(t, "cut", cut, 2, 2, 4, 4)
	for l := 0; l < 2; l++ {
		for h := 0; h < 2; h++ {
			for i := 0; i < 4; i++ {
				for j := 0; j < 4; j++ {
					if cut.At(l, h, i, j) != att.At(l, h, i, j) {
						t.Fatalf("cut [%d,%d,%d,%d] differs", l, h, i, j)
					}
				}
			}
		}
	}
	same, _ := MaxKPredictions(att, 3, 3)
	assertShape(t, "no cut when N ≤ P+k", same, 2, 2, 6, 6)
}
