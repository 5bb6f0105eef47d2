package derive

import (
	"context"
	"math"
	"reflect"
	"testing"

	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/tensor"
)

func offsetsOf(tokens []string) [][2]int {
	var out [][2]int
	pos := 0
	for _, t := range tokens {
		n := len([]rune(t))
		out = append(out, [2]int{pos, pos + n})
		pos += n
	}
	return out
}

// Oracle §7.1 15 through the pass: columns summed per line.
func TestAttentionToLines(t *testing.T) {
	text := "def f(a):\n    return a\n"
	tokens := []string{"def", " f", "(", "a", "):", "\n", "   ", " return", " a", "\n"}
	meta := &store.Sample{Text: text, Tokens: tokens, Offsets: offsetsOf(tokens), PromptLen: 10}
	h := tensor.New(2, 10, 10) // two matrices: H and 2H
	for k := 0; k < 100; k++ {
		h.Data[k] = float64(k)
		h.Data[100+k] = 2 * float64(k)
	}
	spec := linesSpec()
	res, err := spec.Fn(context.Background(), &Input{Tensor: h, Meta: meta}, Kwargs{"agg": "sum", "rows": false})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Tensor.Shape, []int{2, 10, 2}) {
		t.Fatalf("shape %v, want [2 10 2]", res.Tensor.Shape)
	}
	for _, c := range []struct {
		m, row int
		want   [2]float64
	}{{0, 0, [2]float64{15, 30}}, {0, 1, [2]float64{75, 70}}, {0, 2, [2]float64{135, 110}}, {0, 9, [2]float64{555, 390}}, {1, 9, [2]float64{1110, 780}}} {
		got := res.Tensor.Data[(c.m*10+c.row)*2:][:2]
		if got[0] != c.want[0] || got[1] != c.want[1] {
			t.Errorf("matrix %d row %d = %v, want %v", c.m, c.row, got, c.want)
		}
	}
	res, err = spec.Fn(context.Background(), &Input{Tensor: h, Meta: meta}, Kwargs{"agg": "sum", "rows": true})
	if err != nil {
		t.Fatal(err)
	}
	// line×line: Σ over rows of each line of the token×line values.
	var want [4]float64
	for i := 0; i < 10; i++ {
		for j := 0; j < 10; j++ {
			li, lj := 0, 0
			if i >= 6 {
				li = 1
			}
			if j >= 6 {
				lj = 1
			}
			want[li*2+lj] += float64(10*i + j)
		}
	}
	if !reflect.DeepEqual(res.Tensor.Shape, []int{2, 2, 2}) || !reflect.DeepEqual(res.Tensor.Data[:4], want[:]) {
		t.Errorf("rows: shape %v data %v, want [2 2 2] %v", res.Tensor.Shape, res.Tensor.Data[:4], want)
	}
	// Generated tokens (beyond the prompt) are cut.
	meta.PromptLen = 6
	res, err = spec.Fn(context.Background(), &Input{Tensor: h, Meta: meta}, Kwargs{"agg": "max", "rows": false})
	if err != nil || !reflect.DeepEqual(res.Tensor.Shape, []int{2, 6, 1}) || res.Tensor.Data[0] != 5 {
		t.Errorf("prompt of 6 tokens: %v %v, %v", res.Tensor.Shape, res.Tensor.Data[:1], err)
	}
}

// Oracle §7.1 12 through the pass (BPE tokens given by their offsets).
func TestAttentionToChars(t *testing.T) {
	text := "def sum(a, b):\n    c ="
	tokens := []string{"def", " sum", "(", "a", ",", " b", "):", "\n", " ", " ", " ", " c", " ="}
	meta := &store.Sample{Text: text, Tokens: tokens, Offsets: offsetsOf(tokens), PromptLen: len(tokens)}
	w := &tensor.Tensor{Shape: []int{13}, Data: []float64{3, 3, 1, 1, 1, 2, 2, 1, 1, 1, 1, 2, 2}}
	spec := charsSpec()
	for dist, want := range map[string][]float64{
		"replication": {3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, 2, 2, 2, 2},
		"equal_share": {1, 1, 1, .75, .75, .75, .75, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
	} {
		res, err := spec.Fn(context.Background(), &Input{Tensor: w, Meta: meta}, Kwargs{"distribution": dist})
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if math.Abs(res.Tensor.Data[i]-want[i]) > 1e-12 {
				t.Fatalf("%s: %v, want %v", dist, res.Tensor.Data, want)
			}
		}
	}
	// A matrix: the weight of a token is the attention it receives.
	m := &tensor.Tensor{Shape: []int{1, 3, 3}, Data: []float64{1, 0, 0, 0.5, 0.5, 0, 0.2, 0.3, 0.5}}
	meta3 := &store.Sample{Text: "x = 1", Offsets: [][2]int{{0, 1}, {1, 3}, {3, 5}}, PromptLen: 3}
	res, err := spec.Fn(context.Background(), &Input{Tensor: m, Meta: meta3}, Kwargs{"distribution": "equal_share"})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1.7, 0.4, 0.4, 0.25, 0.25}
	if !reflect.DeepEqual(res.Tensor.Shape, []int{1, 5}) {
		t.Fatalf("shape %v", res.Tensor.Shape)
	}
	for i := range want {
		if math.Abs(res.Tensor.Data[i]-want[i]) > 1e-12 {
			t.Fatalf("got %v, want %v", res.Tensor.Data, want)
		}
	}
}
