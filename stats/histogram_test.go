package stats

import (
	"math"
	"testing"
)

// Values numpy.histogram(v, 4, density=True) gives (computed by hand: range [0, 8],
// width 2, the last bin closed).
func TestHistogram(t *testing.T) {
	edges, d, err := Histogram([]float64{0, 1, 2, 2, 5, 8, 8, 7.999}, 4)
	if err != nil {
		t.Fatal(err)
	}
	wantEdges := []float64{0, 2, 4, 6, 8}
	wantD := []float64{2.0 / 16, 2.0 / 16, 1.0 / 16, 3.0 / 16}
	for i := range wantEdges {
		if edges[i] != wantEdges[i] {
			t.Errorf("edges %v, want %v", edges, wantEdges)
		}
	}
	sum := 0.0
	for i := range wantD {
		if math.Abs(d[i]-wantD[i]) > 1e-15 {
			t.Errorf("density %v, want %v", d, wantD)
		}
		sum += d[i] * 2
	}
	if math.Abs(sum-1) > 1e-12 {
		t.Errorf("densities integrate to %v", sum)
	}
	if e, d, err := Histogram([]float64{3, 3}, 2); err != nil || e[0] != 2.5 || e[2] != 3.5 || d[1] != 2 {
		t.Errorf("constant values: %v %v %v", e, d, err)
	}
	for _, bad := range [][]float64{nil, {1, math.NaN()}} {
		if _, _, err := Histogram(bad, 3); err == nil {
			t.Errorf("Histogram(%v) accepted", bad)
		}
	}
	if _, _, err := Histogram([]float64{1}, 0); err == nil {
		t.Error("0 bins accepted")
	}
}
