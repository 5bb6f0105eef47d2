package derive

import (
	"context"
	"math"
	"testing"

	"github.com/attnscope/attnscope/analysis/code"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

func TestAttentionPerCodeCategory(t *testing.T) {
	meta := &store.Sample{Text: "x = 1", Tokens: []string{"x", " =", " 1"}, Offsets: [][2]int{{0, 1}, {1, 3}, {3, 5}}, PromptLen: 3}
	att := &tensor.Tensor{Shape: []int{1, 1, 3, 3}, Data: []float64{1, 0, 0, 0.5, 0.5, 0, 0.2, 0.3, 0.5}}
	// received = [1.7, 0.8, 0.5]; equal share: x 1.7 | ' ' .4 '=' .4 | ' ' .25 '1' .25
	want := map[code.Category][2]float64{ // share, mean
		code.Identifier: {1.7 / 3, 1.7},
		code.Operator:   {0.4 / 3, 0.4},
		code.Whitespace: {0.65 / 3, 0.325},
		code.Literal:    {0.25 / 3, 0.25},
		code.Keyword:    {0, 0},
	}
	spec := codeCategorySpec()
	kw := Kwargs{"language": "python", "distribution": "equal_share"}
	for _, input := range []*tensor.Tensor{att, {Shape: []int{3, 3}, Data: att.Data}, {Shape: []int{3}, Data: []float64{1.7, 0.8, 0.5}}} {
		res, err := spec.Fn(context.Background(), &Input{Tensor: input, Meta: meta}, kw)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, m := range res.Metrics {
			if m.Layer == -1 {
				got[m.Name] = m.Value
			}
		}
		for c, w := range want {
			if math.Abs(got[string(c)+"_share"]-w[0]) > 1e-12 || math.Abs(got[string(c)+"_mean"]-w[1]) > 1e-12 {
				t.Errorf("input %v: %s share %g mean %g, want %g %g", input.Shape, c, got[string(c)+"_share"], got[string(c)+"_mean"], w[0], w[1])
			}
		}
		wantShape := []int{len(code.Categories())}
		if len(input.Shape) == 4 {
			wantShape = []int{1, 1, len(code.Categories())}
		}
		if len(res.Tensor.Shape) != len(wantShape) || res.Tensor.Shape[len(wantShape)-1] != wantShape[len(wantShape)-1] {
			t.Errorf("output shape %v, want %v", res.Tensor.Shape, wantShape)
		}
	}
	if _, err := spec.Fn(context.Background(), &Input{Tensor: att, Meta: &store.Sample{}}, kw); err == nil {
		t.Error("no metadata: no error")
	}
}
