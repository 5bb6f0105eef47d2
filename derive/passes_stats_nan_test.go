package derive

import (
	"math"
	"testing"

	"github.com/attnscope/attnscope/tensor"
)

// A head whose statistic is undefined (NaN) is left out of its layer's and the overall
// mean instead of turning them into NaN; a layer with no defined head has a NaN mean.
func TestHeadLayerMetricsSkipNaN(t *testing.T) {
	nan := math.NaN()
	heads := &tensor.Tensor{Shape: []int{2, 3}, Data: []float64{1, nan, 3, nan, nan, nan}}
	rows := headLayerMetrics("gt_spearman", heads)
	got := map[[2]int]float64{}
	for _, m := range rows {
		got[[2]int{m.Layer, m.Head}] = m.Value
	}
	if got[[2]int{0, -1}] != 2 || got[[2]int{-1, -1}] != 2 || !math.IsNaN(got[[2]int{1, -1}]) || !math.IsNaN(got[[2]int{0, 1}]) {
		t.Fatalf("means %v", got)
	}
}
